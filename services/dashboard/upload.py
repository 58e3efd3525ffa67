"""Reading one uploaded file from a multipart request, in memory and within a byte limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from services.dashboard.photo import UploadRejected

FIELD = "file"


async def read_upload(request: Request, max_bytes: int) -> tuple[str, bytes]:
    """(filename, bytes) of the multipart field `file`; raises UploadRejected (400/413/415)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise UploadRejected(415, f"send the image as multipart/form-data with the field {FIELD!r}")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadRejected(413, f"upload too large: {int(declared)} bytes exceeds the limit of {max_bytes}")

    parser = MultiPartParser(request.headers, _bounded(request.stream(), max_bytes + 64 * 1024),
                             max_files=1, max_fields=10)
    parser.spool_max_size = max_bytes + 1  # keep the file in memory: uploads are never written to disk
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise UploadRejected(400, f"malformed multipart body: {exc.message}") from None
    upload = form.get(FIELD)
    if upload is None or isinstance(upload, str):
        await form.close()
        raise UploadRejected(400, f"no file in the multipart field {FIELD!r}")
    try:
        data = await upload.read()
    finally:
        await form.close()
    if len(data) > max_bytes:
        raise UploadRejected(413, f"upload too large: {len(data)} bytes exceeds the limit of {max_bytes}")
    return upload.filename or "upload", data


async def _bounded(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise UploadRejected(413, f"upload too large: more than {limit} bytes")
        yield chunk
