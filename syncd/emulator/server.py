"""Running the emulator: `serve()` blocks (the CLI), `EmulatorServer` runs it on a background
thread on an ephemeral loopback port (test fixtures, `syncd demo`)."""

from __future__ import annotations

import asyncio
import threading
import time
from types import TracebackType
from typing import Any, Self

import uvicorn

from .app import Emulator, create_app
from .clock import Clock
from .settings import EmulatorSettings


def _config(app: Emulator, host: str, port: int) -> uvicorn.Config:
    # httptools and uvloop are used when installed ("auto"); access logs would cost more than
    # the requests they describe. Google's front ends keep idle connections for about ten
    # minutes (610 s): closing them sooner would break pooled client connections (httplib2
    # does not retry a request whose send hits a closed socket) in ways Google never does.
    return uvicorn.Config(app, host=host, port=port, lifespan="on", access_log=False,
                          log_level="warning", ws="none", proxy_headers=False,
                          server_header=False, timeout_keep_alive=610)


def serve(host: str = "127.0.0.1", port: int = 8765, state_file: str | None = None,
          **options: Any) -> None:
    """Run the emulator in the foreground until interrupted; `options` are EmulatorSettings
    fields (e.g. access_token_ttl=60, user_rate_limit=None)."""
    settings = EmulatorSettings().with_options(state_file=state_file, **options)
    app = create_app(settings)
    print(f"syncd calendar emulator on http://{host}:{port} "
          f"(API endpoint http://{host}:{port}/calendar/v3/)", flush=True)
    uvicorn.Server(_config(app, host, port)).run()


class EmulatorServer:
    """The emulator on 127.0.0.1 and a free port, in a daemon thread.

        with EmulatorServer(access_token_ttl=60) as emu:
            tokens = emu.create_account("ann@example.com")
            build("calendar", "v3", credentials=..., static_discovery=True,
                  client_options={"api_endpoint": emu.api_endpoint})
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, clock: Clock | None = None,
                 **options: Any) -> None:
        self.host = host
        self.port = port
        self.app = create_app(EmulatorSettings().with_options(**options), clock)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> Self:
        server = uvicorn.Server(_config(self.app, self.host, self.port))
        thread = threading.Thread(target=server.run, name="syncd-emulator", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the calendar emulator did not start")
            time.sleep(0.01)
        self.port = server.servers[0].sockets[0].getsockname()[1]
        self.base_url = f"http://{self.host}:{self.port}"
        self._server, self._thread = server, thread
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout)
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def api_endpoint(self) -> str:
        """What to pass as client_options["api_endpoint"]: it replaces rootUrl + servicePath."""
        return f"{self.base_url}/calendar/v3/"

    @property
    def batch_uri(self) -> str:
        return f"{self.base_url}/batch/calendar/v3"

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    @property
    def auth_uri(self) -> str:
        return f"{self.base_url}/o/oauth2/auth"

    @property
    def revoke_uri(self) -> str:
        return f"{self.base_url}/revoke"

    # -- in-process admin helpers (same operations as the /emulator/ API) -------------------

    @property
    def state(self) -> Any:
        return self.app.state

    @property
    def control(self) -> Any:
        return self.app.control

    @property
    def faults(self) -> Any:
        return self.app.faults

    @property
    def counters(self) -> Any:
        return self.app.counters

    @property
    def settings(self) -> EmulatorSettings:
        return self.app.settings

    @property
    def clock(self) -> Clock:
        return self.app.clock

    def create_account(self, email: str, scopes: list[str] | None = None,
                       client_id: str | None = None, time_zone: str | None = None
                       ) -> dict[str, Any]:
        return self.control.create_account(email, scopes=scopes, client_id=client_id,
                                           time_zone=time_zone, base_url=self.base_url)

    def client_config(self, client_id: str | None = None) -> dict[str, Any]:
        """Google client_secrets.json content for a registered (or the default) client."""
        return self.control.client_secrets(client_id, self.base_url)

    def advance_clock(self, seconds: float) -> str:
        return self.control.advance_clock(seconds)

    def reset(self) -> None:
        self.control.reset()

    def drain_push(self, timeout: float = 10.0) -> None:
        """Block until every queued push notification has been attempted."""
        loop = self.app.push.loop
        if loop is not None:
            asyncio.run_coroutine_threadsafe(self.app.push.drain(), loop).result(timeout)
