"""The read API: live snapshots (REST + WebSocket), reports, the dashboard."""
