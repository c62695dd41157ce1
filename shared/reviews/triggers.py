"""Review routes: a student reviews a completed booking; anyone reads a listed mentor's reviews."""

from __future__ import annotations

from shared import resources
from shared.http.auth import ANONYMOUS, roles
from shared.http.endpoint import ApiRequest, blueprint, endpoint
from shared.reviews import service
from shared.reviews.models import Review, ReviewCreate, ReviewQuery, ReviewsPage

bp = blueprint()


# Students only: a mentor (even the booking's) or an admin is 403 before the booking is looked up.
@endpoint(
    bp,
    name="create_review",
    route="bookings/{id:guid}/review",
    method="POST",
    auth=roles("student"),
    body=ReviewCreate,
    status=201,
)
async def create_review(request: ApiRequest[ReviewCreate]) -> Review:
    assert request.body is not None
    db, cache = await resources.get_database(), await resources.get_cache()
    return await service.create_review(db, cache, request.user.user_id, request.route_id(), request.body)


@endpoint(bp, name="list_mentor_reviews", route="mentors/{id:guid}/reviews", method="GET", auth=ANONYMOUS)
async def list_mentor_reviews(request: ApiRequest[None]) -> ReviewsPage:
    query = ReviewQuery.model_validate(dict(request.query))
    return await service.list_reviews(await resources.get_database(), request.route_id(), query)
