"""The problems a photo upload can answer with. Codes are a contract with the phones."""

from __future__ import annotations

from backend.core.errors import Conflict, DomainError, NotFound, ServiceUnavailable, TooManyRequests


class MediaRefused(DomainError):
    """An upload whose bytes are not an acceptable photo: nothing of it is kept."""

    code = "media-refused"
    status = 422
    title_zh = "照片无法接收"
    title_en = "Photo refused"


class MediaEmpty(MediaRefused):
    code = "media-empty"
    status = 400
    title_zh = "照片内容为空"
    title_en = "The photo is empty"


class MediaTooLarge(MediaRefused):
    code = "media-too-large"
    status = 413
    title_zh = "照片文件过大"
    title_en = "Photo file too large"


class MediaTooManyPixels(MediaRefused):
    code = "media-too-many-pixels"
    status = 413
    title_zh = "照片像素过多"
    title_en = "Photo has too many pixels"


class MediaUnsupportedType(MediaRefused):
    code = "media-unsupported-type"
    status = 415
    title_zh = "不支持的文件类型"
    title_en = "Unsupported file type"


class MediaCorrupt(MediaRefused):
    code = "media-corrupt"
    status = 422
    title_zh = "照片文件已损坏"
    title_en = "The photo file is damaged"


class MediaConflict(Conflict):
    code = "media-conflict"
    title_zh = "该编号已用于另一张照片"
    title_en = "This UUID already holds a different photo"


class MediaUploadOffset(Conflict):
    code = "media-upload-offset"
    title_zh = "分片位置与服务器不一致"
    title_en = "The chunk does not continue the stored upload"


class MediaBadRange(DomainError):
    code = "media-bad-range"
    status = 400
    title_zh = "Content-Range 请求头无效"
    title_en = "Invalid Content-Range header"


class MediaInvalidParent(DomainError):
    code = "media-invalid-parent"
    status = 422
    title_zh = "照片所属记录无效"
    title_en = "Invalid parent record"


class MediaNotFound(NotFound):
    code = "media-not-found"
    title_zh = "照片不存在"
    title_en = "Photo not found"


class MediaNotReady(Conflict):
    code = "media-not-ready"
    title_zh = "照片尚未处理完成"
    title_en = "The photo is not processed yet"


class MediaLinkExpired(DomainError):
    code = "media-link-expired"
    status = 410
    title_zh = "下载链接已过期"
    title_en = "The download link has expired"


class MediaUploadInProgress(Conflict):
    code = "media-upload-in-progress"
    title_zh = "这张照片正由另一个请求上传，请稍后查询上传进度"
    title_en = "Another request is uploading this photo; ask for its status and resume"


class MediaTooManyUnfinished(TooManyRequests):
    """A new chunked upload beyond the caller's share of unfinished uploads (count or bytes)."""

    code = "media-too-many-unfinished"
    title_zh = "未完成的照片上传过多，请先续传完成之前的照片"
    title_en = "Too many unfinished photo uploads: finish the earlier ones first"


class MediaStagingFull(ServiceUnavailable):
    """A new chunked upload while unfinished uploads of all users fill the staging space."""

    code = "media-staging-full"
    title_zh = "服务器上传暂存空间已满，请稍后再上传"
    title_en = "The server's upload space is full; upload again later"


class MediaParentNotAuthors(DomainError):
    code = "media-parent-not-authors"
    status = 403
    title_zh = "只有记录的填写人可以上传该记录列出的照片"
    title_en = "Only the record's author uploads the photos it lists"
