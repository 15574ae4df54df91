"""HTTP layer of `/api/openslo`: import and export OpenSLO v1 YAML."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from reliability_studio.api.deps import OrganizationId, Session
from reliability_studio.api.middleware import BodyTooLargeError
from reliability_studio.api.problems import PROBLEM_RESPONSES, BadRequestError, ProblemError
from reliability_studio.slos.openslo_service import ImportResult, export_openslo, import_openslo

YAML_MEDIA_TYPE = "application/yaml"
YAML_MEDIA_TYPES = frozenset({"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"})
_YAML_BODY: dict[str, Any] = {"schema": {"type": "string", "format": "binary"}}

router = APIRouter(prefix="/api/openslo", tags=["openslo"], responses=PROBLEM_RESPONSES)


class UnsupportedMediaTypeError(ProblemError):
    status = 415
    title = "Unsupported Media Type"


@router.post(
    "",
    response_model=ImportResult,
    status_code=status.HTTP_200_OK,
    responses={
        201: {"model": ImportResult, "description": "A service or an SLO was created"},
        415: PROBLEM_RESPONSES[415] | {"description": "Body is not YAML"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "OpenSLO v1 documents (Service, SLI, SLO), separated by `---`.",
            "content": {media_type: _YAML_BODY for media_type in sorted(YAML_MEDIA_TYPES)},
        }
    },
)
async def import_documents(
    request: Request,
    response: Response,
    session: Session,
    organization_id: OrganizationId,
    dry_run: Annotated[
        bool, Query(description="Check the upload and report what would change; write nothing.")
    ] = False,
) -> ImportResult:
    """Create or update services and SLOs from OpenSLO v1 YAML, all or nothing.

    An SLO is matched by its service and name (`metadata.displayName`, else
    `metadata.name`): an existing one is updated, never duplicated. Everything that cannot
    be honoured (time slices, composite SLOs, thresholds, non-Prometheus sources, queries
    that are not plain selectors, ...) is refused with 422 naming the document and field;
    nothing is written then. 201 when something was created, else 200.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in YAML_MEDIA_TYPES:
        raise UnsupportedMediaTypeError(
            f"Send the documents as YAML with Content-Type: {YAML_MEDIA_TYPE}."
        )
    body = await request.body()
    max_bytes: int = request.app.state.settings.max_body_bytes
    if len(body) > max_bytes:  # the middleware stops it first; this holds without it too
        raise BodyTooLargeError(max_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequestError("The body must be UTF-8 text.") from None
    result = await import_openslo(session, organization_id, text, dry_run=dry_run)
    if result.created_anything and not dry_run:
        response.status_code = status.HTTP_201_CREATED
    return result


@router.get(
    "",
    response_class=Response,
    responses={
        200: {
            "description": "OpenSLO v1 documents, separated by `---`; SLOs that OpenSLO "
            "cannot express are listed in a leading `# not exportable:` comment.",
            # No schema: a schema describes one parsed document, and this is a stream of
            # them (`type: string` described the text, wrongly for a YAML media type).
            "content": {YAML_MEDIA_TYPE: {}},
        }
    },
)
async def export_documents(
    session: Session,
    organization_id: OrganizationId,
    service_id: Annotated[
        uuid.UUID | None, Query(description="Only this service's SLOs (404 if unknown).")
    ] = None,
) -> Response:
    """Every SLO as OpenSLO v1 YAML (Service and SLO documents), ready to import again."""
    text = await export_openslo(session, organization_id, service_id)
    return Response(content=text, media_type=YAML_MEDIA_TYPE)
