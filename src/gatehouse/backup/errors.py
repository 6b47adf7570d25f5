"""What `gatehouse backup` and `gatehouse restore` refuse or fail on; each message says
what to do."""

from __future__ import annotations

from gatehouse.errors import CommandError


class BackupFailed(CommandError):
    code = "BACKUP_FAILED"
    default_message = "The backup failed"


class ArchiveUnreadable(CommandError):
    """A wrong key, a damaged or altered archive, or not an archive at all."""

    code = "ARCHIVE_UNREADABLE"
    default_message = "The archive cannot be read"


class RestoreRefused(CommandError):
    """The archive or the target database does not fit; nothing was changed."""

    code = "RESTORE_REFUSED"
    default_message = "The restore was refused"
