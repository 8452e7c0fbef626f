"""A local Google Calendar API v3 and OAuth 2.0 emulator for tests, benchmarks and demos.

Start it with `syncd emulator`, `serve()` or, in-process, `EmulatorServer`; see
docs/emulator.md for what is emulated and how it differs from Google.
"""

from .app import Emulator, create_app
from .clock import AdjustableClock
from .server import EmulatorServer, serve
from .settings import EmulatorSettings

__all__ = ["AdjustableClock", "Emulator", "EmulatorServer", "EmulatorSettings", "create_app",
           "serve"]
