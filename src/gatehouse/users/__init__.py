"""User accounts. Importing any part of the package registers the flush listener that
keeps the live-user counts (gatehouse.users.counts) with every write."""

from gatehouse.users import counts as counts
