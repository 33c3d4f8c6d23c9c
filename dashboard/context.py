"""Typed keys of the dashboard's application state."""

from __future__ import annotations

from aiohttp import web

from dashboard.observability import DashboardMetrics
from dashboard.service import DashboardService
from dashboard.settings import DashboardSettings

SETTINGS = web.AppKey("settings", DashboardSettings)
METRICS = web.AppKey("metrics", DashboardMetrics)
SERVICE = web.AppKey("service", DashboardService)
