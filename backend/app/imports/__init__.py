"""Bringing users from another system: their password hash formats and the import (EVENTS.md)."""
