"""colors.get: Google Calendar's fixed palette (calendar colors 1-24, event colors 1-11)."""

from __future__ import annotations

from typing import Any

_CALENDAR_BACKGROUNDS = (
    "#ac725e", "#d06b64", "#f83a22", "#fa573c", "#ff7537", "#ffad46", "#42d692", "#16a765",
    "#7bd148", "#b3dc6c", "#fbe983", "#fad165", "#92e1c0", "#9fe1e7", "#9fc6e7", "#4986e7",
    "#9a9cff", "#b99aff", "#c2c2c2", "#cabdbf", "#cca6ac", "#f691b2", "#cd74e6", "#a47ae2",
)
# Lavender, Sage, Grape, Flamingo, Banana, Tangerine, Peacock, Graphite, Blueberry, Basil, Tomato.
_EVENT_BACKGROUNDS = (
    "#a4bdfc", "#7ae7bf", "#dbadff", "#ff887c", "#fbd75b", "#ffb878", "#46d6db", "#e1e1e1",
    "#5484ed", "#51b749", "#dc2127",
)

COLORS: dict[str, Any] = {
    "kind": "calendar#colors",
    "updated": "2012-02-14T00:00:00.000Z",
    "calendar": {str(i): {"background": bg, "foreground": "#1d1d1d"}
                 for i, bg in enumerate(_CALENDAR_BACKGROUNDS, start=1)},
    "event": {str(i): {"background": bg, "foreground": "#1d1d1d"}
              for i, bg in enumerate(_EVENT_BACKGROUNDS, start=1)},
}
