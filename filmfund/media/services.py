"""The footage pipeline's use cases, importable from one place for the views, the API, the CLI
and the queue tasks. Each lives in its own module:

- common.py: settings, storage, profiles, timeouts, problems
- ingest.py and uploads.py: files, folders, cards, uploads and direct S3 uploads
- jobs.py: claiming, heartbeats, retries and recovery of media jobs; runner.py: running one
- verify.py: the decode pass and diagnosis;  renditions.py: proxy, web, poster, strip, image
- fixity.py: re-hashing stored objects;  board.py: the footage board's queries
- publishing.py: publishing to a digital reward and unpublishing
- library.py: the donor library: what a donor may download, play and see, with expiring links
  (the final captions of what they hold included)
- captions.py: captions per language (WebVTT/SRT read by libraries, sanitised, with a status)
- timeline.py: timelines for an editor (OpenTimelineIO);  bags.py: BagIt archive bags

ffmpeg stays behind filmfund.media.ffmpeg, bytes behind filmfund.media.storage.
"""
from filmfund.media.board import (active_jobs, asset_dict, assets_by_ids, cameras, find_assets,  # noqa: F401
                                  get_asset, history, job_progress, update_notes, TITLE_MAX)
from filmfund.media.common import (CONTENT_TYPES, EXTENSIONS, OPTIONAL, REQUIRED, PermanentJobError,  # noqa: F401
                                   _iso, profiles, storage, work_dir, worker_name)
from filmfund.media.fixity import FixityResult, check_fixity, sweep_incoming  # noqa: F401
from filmfund.media.ingest import IngestResult, ingest_paths, ingest_upload, total_bytes  # noqa: F401
from filmfund.media.jobs import enqueue, recover_jobs  # noqa: F401
from filmfund.media.library import (Download, _download_for, download_link, entitled_download,  # noqa: F401
                                    library_for, link_ttl, rendition_link,
                                    resolve_download_token)
from filmfund.media.publishing import (DONOR_KINDS, publish, publish_targets, reward_titles,  # noqa: F401
                                       unpublish)
from filmfund.media.models import AssetState  # noqa: F401
from filmfund.media.uploads import (DIRECT_UPLOAD_TTL, complete_direct_upload, direct_upload_part_urls,  # noqa: F401
                                    start_direct_upload)
from filmfund.media.renditions import retry as retry_renditions  # noqa: F401
from filmfund.media.runner import run_job  # noqa: F401
from filmfund.media.verify import reverify  # noqa: F401
