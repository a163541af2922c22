"""A pytest plugin for hardware-in-the-loop tests: write a test once, run it against the
sim in process, the sim over pseudo-terminals, or a bench of dev boards.

    pytest --board sim                    # every board emulated, in this process
    pytest --board sim --serial           # every board emulated, each on its own pty
    pytest --board boards/flatsat.toml    # the boards a definition names, on their ports
    pytest --board boards/flatsat.toml --proxy   # and a fault proxy on every board's line
    pytest --ground-server URL            # `ground` through a running ground server

Fixtures: `satellite` (assembled, flying, closed after the test however it ends),
`ground` (an operator on the space link: send_and_verify, wait_for, expect_event),
`board` (a function: board("power") is that board's driver), and `inject` (faults:
the sim's, or on a bench the same calls through fault proxies on the boards' lines
(--proxy), the power board and the compute device; one a home cannot make skips the
test, saying why). Markers:
`hardware_only` and `sim_only`. On the sim, waits advance the virtual clock: a wait of
an orbit takes seconds. There is no ceiling on a wait but the test's own timeout.

When a test fails, its report ends with the last telemetry and events the ground saw.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from boards import definition as boarddef
from ground.client import GroundClient, Signer
from ground.console import Console
from ground.remote import RemoteGround, ServerClient, ServerError
from hal.auth import KeyFile
from hal.packetlink import InProcessLink
from sim.faults import UpsetsOnDemand
from sim.inject import DroppableLink, Inject
from skyrack.assembly import Satellite, assemble
from skyrack.bench_inject import BenchInject, Skipping
from skyrack.proxy import FaultProxy

SIM = "sim"
SIM_STEP_S = 0.5  # virtual time a wait advances between looks
FLIGHT_STEP_S = 0.1  # on hardware: how far the flight thread runs between looks at stop
LAST_EVENTS = 15


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("skyrack", "skyrack hardware-in-the-loop")
    group.addoption("--board", default=SIM, metavar="sim|TOML",
                    help="what the HIL fixtures fly against: 'sim' (default), or a board "
                         "definition whose boards are on serial ports")
    group.addoption("--serial", action="store_true",
                    help="with --board sim: each emulated board on its own pseudo-terminal, "
                         "reached through pyserial as a real one would be")
    group.addoption("--sim-seed", type=int, default=1,
                    help="with --board sim: the sim's random seed (default 1)")
    group.addoption("--port", action="append", default=[], metavar="NAME=URL",
                    help="with --board TOML: put board NAME on this port (a pyserial URL), "
                         "whatever the definition says (repeatable)")
    group.addoption("--proxy", action="store_true",
                    help="with --board TOML: a fault proxy (skyrack.proxy) on every board's "
                         "line, so that `inject` can silence boards on the bench")
    group.addoption("--ground-server", default=None, metavar="URL",
                    help="run the tests' `ground` through this running ground server "
                         "(`skyrack ground serve`), on the satellite it serves: tests that "
                         "need the satellite itself (satellite, board, inject) are skipped")
    group.addoption("--satellite", default=None, metavar="NAME",
                    help="with --ground-server: the mission's satellite (default: its first)")


def _definition(config: pytest.Config) -> boarddef.SatelliteDefinition:
    """What the fixtures fly against; pytest.UsageError (once, at start) when the
    options do not make one."""
    on_sim = _on_sim(config)
    path = boarddef.default_path() if on_sim else config.getoption("--board")
    ports = {}
    for item in config.getoption("--port"):
        name, eq, url = item.partition("=")
        if not eq or not name or not url:
            raise pytest.UsageError(f"--port {item!r}: expected NAME=URL")
        ports[name] = url
    if on_sim and ports:
        raise pytest.UsageError("--port is for a bench definition, not --board sim")
    if on_sim and config.getoption("--proxy"):
        raise pytest.UsageError("--proxy is for a bench definition: on the sim, `inject` "
                                "reaches the emulated boards themselves")
    try:
        definition = boarddef.with_ports(boarddef.load(path), ports)
    except boarddef.DefinitionError as e:
        raise pytest.UsageError(str(e)) from None
    if on_sim and not definition.emulated:
        raise pytest.UsageError(f"--board sim: {path} does not emulate every board")
    if not on_sim and definition.emulated:
        raise pytest.UsageError(f"--board {path}: every board is emulated; use --board sim")
    return definition


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hardware_only(reason): needs real boards; skipped "
                            "on the sim")
    config.addinivalue_line("markers", "sim_only(reason): needs the sim (physics on "
                            "demand, fault injection); skipped on hardware")
    server = config.getoption("--ground-server")
    if server is not None:  # said once, before any test: a server that is not there
        if config.getoption("--board") != SIM or config.getoption("--port") \
                or config.getoption("--serial"):
            raise pytest.UsageError("--ground-server: the satellite is the server's; "
                                    "--board, --serial and --port are not for it")
        try:
            names = [s["name"] for s in ServerClient(server).satellites()]
        except ServerError as e:
            raise pytest.UsageError(f"--ground-server: {e}") from None
        wanted = config.getoption("--satellite")
        if wanted is not None and wanted not in names:
            raise pytest.UsageError(f"--satellite {wanted!r}: the server at {server} has "
                                    f"{', '.join(names)}")
    elif config.getoption("--satellite") is not None:
        raise pytest.UsageError("--satellite is for --ground-server")
    elif config.getoption("--board") != SIM or config.getoption("--port") \
            or config.getoption("--proxy"):
        _definition(config)  # a bad --board, --port or --proxy: said once, before any test


def _on_sim(config: pytest.Config) -> bool:
    return config.getoption("--board") == SIM and not config.getoption("--ground-server")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_sim = _on_sim(config)
    target = "sim" if on_sim else config.getoption("--board")
    if config.getoption("--ground-server"):
        target = f"ground server {config.getoption('--ground-server')}"
    for item in items:
        for name, skip_on_sim in (("hardware_only", True), ("sim_only", False)):
            marker = item.get_closest_marker(name)
            if marker is None or skip_on_sim != on_sim:
                continue
            why = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
            where = target if target.startswith("ground server") else f"--board {target}"
            item.add_marker(pytest.mark.skip(reason=f"{name} ({where})"
                                                    + (f": {why}" if why else "")))


class HilGround:
    """The operator, as a test drives it."""

    def __init__(self, client: GroundClient, console: Console) -> None:
        self.client = client
        self.console = console

    def send_and_verify(self, command: str, timeout_s: float = 30.0, **args: Any) -> Any:
        """Send `command` with `args` and wait until it completes; fails the test with
        the failure code and reason otherwise."""
        return self.console.send_and_verify(command, args, timeout_s)

    def wait_for(self, point: str, predicate: Callable[[Any], bool],
                 timeout_s: float = 30.0) -> Any:
        """The first value of telemetry `point` satisfying `predicate`."""
        return self.console.wait_for(point, predicate, timeout_s)

    def expect_event(self, name: str, timeout_s: float = 30.0, *,
                     args: dict[str, Any] | None = None, since: float | None = None,
                     unless: Sequence[str] = ()) -> Any:
        """The earliest event `name` with at least `args` (generated at or after on-board
        time `since`) that no earlier expect took, already received or still to come; an
        event named in `unless` coming first fails the wait at once."""
        return self.console.expect_event(name, timeout_s, args=args, since_s=since,
                                         unless=unless)

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (on the sim, virtual ones), taking in telemetry meanwhile."""
        end = self.console.now() + seconds
        while self.console.now() < end:
            self.console.pump()
            self.console.idle()

    def value(self, point: str) -> Any:
        seen = self.client.values.get(point)
        return None if seen is None else seen[1]

    def last_seen(self) -> str:
        """The last telemetry and events, for a failure report."""
        values = sorted(self.client.values.items())  # the latest of every point
        lines = ["last telemetry (on-board time, point, value):"]
        lines += [f"  {t:10.1f}  {name:34} {value}" for name, (t, value) in values]
        lines.append("last events:")
        lines += [f"  {e.t_s:10.1f}  {e.severity:8} {e.name} {e.args}"
                  for e in list(self.client.events)[-LAST_EVENTS:]] or ["  (none)"]
        return "\n".join(lines)


@dataclasses.dataclass
class UnderTest:
    """The satellite of one test, and everything the fixtures hand out."""

    satellite: Satellite | None  # None: the ground server's, out of reach
    ground: HilGround
    link: DroppableLink | None
    on_sim: bool
    stop: Callable[[], None]
    proxies: dict[str, FaultProxy] = dataclasses.field(default_factory=dict)
    upsets: UpsetsOnDemand | None = None


THROUGH_SERVER = ("with --ground-server the satellite is the server's: only `ground` "
                  "reaches it")


def _build(config: pytest.Config) -> UnderTest:
    server = config.getoption("--ground-server")
    if server is not None:  # an operator of the server's satellite, on the wall clock
        remote = RemoteGround(ServerClient(server, satellite=config.getoption("--satellite")),
                              "pytest")
        console = Console(remote)  # type: ignore[arg-type]
        return UnderTest(None, HilGround(remote, console), None, False,  # type: ignore[arg-type]
                         lambda: None)
    on_sim = _on_sim(config)
    definition = _definition(config)
    # The test is the operator: the definition's own plan does not run.
    definition = dataclasses.replace(definition, plan=())
    keys = KeyFile.generate(spacecraft=definition.spacecraft_id)
    flight_end, ground_end = InProcessLink.pair()
    link = DroppableLink(flight_end, now=lambda: 0.0)  # the clock comes with the satellite
    proxies: dict[str, FaultProxy] = {}
    upsets: list[UpsetsOnDemand] = []
    if not on_sim:
        def wrap(device: Any) -> UpsetsOnDemand:
            upsets.append(UpsetsOnDemand(device, seed=config.getoption("--sim-seed")))
            return upsets[-1]

        if config.getoption("--proxy"):  # each board's line through a proxy in this process
            try:
                for spec in definition.boards:
                    assert spec.port is not None
                    proxies[spec.name] = FaultProxy(spec.port, seed=config.getoption(
                        "--sim-seed"), baudrate=spec.baudrate)
            except BaseException:
                for proxy in proxies.values():
                    proxy.close()
                raise
            definition = boarddef.with_ports(definition, {n: p.path for n, p in proxies.items()})
    try:
        satellite = assemble(definition, seed=config.getoption("--sim-seed"),
                             serial=on_sim and config.getoption("--serial"), link=link,
                             keys=keys, wrap_compute=None if on_sim else wrap)
    except BaseException:
        for proxy in proxies.values():
            proxy.close()
        raise
    link.now = satellite.clock.now_s
    client = GroundClient(ground_end, satellite.flight.dictionary(),
                          Signer(keys.active, keys.keys[keys.active],
                                 spacecraft=keys.spacecraft),
                          clock=satellite.clock.now_s)
    if on_sim:
        def advance() -> None:
            satellite.run_until(satellite.clock.now_s() + SIM_STEP_S)

        console = Console(client, now=satellite.clock.now_s, idle=advance)
        return UnderTest(satellite, HilGround(client, console), link, True, lambda: None)

    # Real boards: the flight software flies in its own thread on the wall clock; the
    # test's direct board calls take turns with it one exchange at a time (BoardLink
    # serialises its calls), so neither waits on the other's sleeps.
    stopping = threading.Event()

    def fly() -> None:
        while not stopping.is_set():
            satellite.run_until(satellite.clock.now_s() + FLIGHT_STEP_S)

    thread = threading.Thread(target=fly, name="flight-software", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join(timeout=5.0)
        for proxy in proxies.values():
            proxy.close()

    return UnderTest(satellite, HilGround(client, Console(client)), link, False, stop,
                     proxies, upsets[0] if upsets else None)


@pytest.fixture
def _under_test(request: pytest.FixtureRequest) -> Iterator[UnderTest]:
    under_test = _build(request.config)
    request.node._skyrack = under_test  # for the failure report
    try:
        yield under_test
    finally:
        under_test.stop()
        if under_test.satellite is not None:
            under_test.satellite.close()


@pytest.fixture
def satellite(_under_test: UnderTest) -> Satellite:
    """The satellite under test, flying: its flight software, drivers and (on the sim)
    world."""
    if _under_test.satellite is None:
        pytest.skip(THROUGH_SERVER)
    return _under_test.satellite


@pytest.fixture
def ground(_under_test: UnderTest) -> HilGround:
    """An operator connected to the satellite's space link."""
    return _under_test.ground


@pytest.fixture
def board(_under_test: UnderTest) -> Callable[[str], Any]:
    """board(name): that board's driver, for direct access."""
    if _under_test.satellite is None:
        pytest.skip(THROUGH_SERVER)
    drivers = _under_test.satellite.drivers

    def get(name: str) -> Any:
        if name not in drivers:
            raise KeyError(f"no board {name!r} (boards: {', '.join(drivers)})")
        return drivers[name]
    return get


@pytest.fixture
def inject(_under_test: UnderTest) -> Iterator[Any]:
    """Fault injection (bit flips, a silent or dead board, a brownout, link drops, and on
    the sim its power faults), one API in two homes: the sim's (sim.inject.Inject) or
    the bench's (skyrack.bench_inject.BenchInject: the boards' lines through fault
    proxies with --proxy, rails through the power board, upsets in the compute device's
    memory). A call the home cannot make skips the test, saying why."""
    if _under_test.satellite is None:
        pytest.skip(THROUGH_SERVER)
    satellite = _under_test.satellite
    if _under_test.on_sim:
        assert satellite.world is not None and _under_test.link is not None
        yield Skipping(Inject(satellite.world, satellite.emulators, _under_test.link),
                       pytest.skip)
        return
    bench = BenchInject(satellite.definition, satellite.drivers, _under_test.proxies,
                        _under_test.upsets, _under_test.link)
    try:
        yield Skipping(bench, pytest.skip)
    finally:
        bench.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    under_test = getattr(item, "_skyrack", None)
    if report.failed and under_test is not None:
        under_test.ground.console.pump()
        report.sections.append(("skyrack: what the ground saw last",
                                under_test.ground.last_seen()))
