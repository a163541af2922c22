import pytest

from boards.firmware.bootloader import Bootloader
from drivers.flash import FlashResult, flash, upload
from drivers.link import BoardLink
from hal import image
from hal.errors import BoardFault
from hal.transport import InProcessTransport
from sim.boards import EmulatedThermalBoard
from tests.conftest import spec


class PowerCut(Exception):
    pass


def board_and_link(world):
    board = EmulatedThermalBoard(spec("thermal"), world)
    return board, BoardLink("thermal", InProcessTransport(board.receive), timeout_s=0.2)


def new_image(version: str = "2.0.0", payload: bytes = b"x" * 5000,
              kind: str = "thermal") -> bytes:
    return image.build(kind, version, payload)


def test_an_image_round_trips_and_every_kind_of_damage_is_named() -> None:
    img = new_image()
    header = image.verify(img)
    assert (header.kind, header.version_text, header.length) == ("thermal", "2.0.0", 5000)
    with pytest.raises(image.ImageError, match="not a skyrack image"):
        image.verify(b"JUNK" + img[4:])
    with pytest.raises(image.ImageError, match="header fails its CRC"):
        image.verify(img[:10] + b"\xff" + img[11:])
    with pytest.raises(image.ImageError, match="payload fails its CRC32"):
        image.verify(img[:-1] + bytes([img[-1] ^ 1]))
    with pytest.raises(image.ImageError, match="payload is 4999 bytes, header says 5000"):
        image.verify(img[:-1])
    with pytest.raises(image.ImageError, match="not major.minor.patch"):
        image.build("thermal", "2.0", b"")


def test_a_board_boots_a_flashed_image_and_confirms_it(world) -> None:
    board, link = board_and_link(world)
    assert link.call("boot_info")["version"] == "1.0.0"  # factory image in slot a
    result = flash(link, new_image("2.1.0"))
    assert result == FlashResult("thermal", "b", "2.1.0", "confirmed", result.bytes_sent)
    assert link.call("info")["firmware_version"] == "2.1.0"
    assert flash(link, new_image("2.2.0")).slot == "a"  # the slots alternate


def test_an_image_for_another_board_kind_is_refused(world) -> None:
    _, link = board_and_link(world)
    with pytest.raises(BoardFault, match="image is for a 'power' board; this is a 'thermal'"):
        upload(link, new_image(kind="power"))


def test_a_damaged_chunk_and_an_incomplete_upload_are_refused(world) -> None:
    _, link = board_and_link(world)
    header = new_image()[:image.HEADER_BYTES]
    link.call("flash_begin", {"header": header})
    with pytest.raises(BoardFault, match="chunk at 0 fails its CRC32"):
        link.call("flash_chunk", {"offset": 0, "data": b"x" * 1024, "crc32": 1})
    with pytest.raises(BoardFault, match="chunks are missing"):
        link.call("flash_end")
    with pytest.raises(BoardFault, match="nothing to activate"):
        link.call("flash_activate")


def test_an_image_that_never_confirms_is_rolled_back(world) -> None:
    _, link = board_and_link(world)
    waited = []

    def wait() -> bool:  # let board time pass, as a flash tool waiting in real time would
        waited.append(1)
        world.clock.sleep_until(world.clock.now_s() + 1.0)
        return len(waited) < 30

    result = flash(link, new_image("3.0.0", b"NOCONFIRM" + b"y" * 3000), wait=wait)
    assert result.state == "rolled_back" and result.version == "1.0.0"
    assert 10 <= len(waited) <= 13  # the 10 s trial window
    assert link.call("boot_info")["rolled_back"] == "b"


def flash_with_power_cut_at(world, write: int) -> tuple[Bootloader, bool]:
    """Flash 2.0.0 over 1.0.0, cutting the power before NVM write number `write`; then
    power the board up again. Returns its bootloader and whether the cut happened."""
    board, link = board_and_link(world)
    count = [0]

    def crash(key: str) -> None:
        count[0] += 1
        if count[0] == write:
            raise PowerCut(key)

    board.platform.nvm_crash = crash
    try:
        flash(link, new_image("2.0.0", b"z" * 3500))
    except Exception:  # the cut, surfacing as it may: raw or as a board error mid-op
        pass
    board.platform.nvm_crash = None
    rebooted = Bootloader("thermal", board.platform, b"")  # power back on: boot from NVM
    return rebooted, count[0] >= write


def test_a_power_cut_before_any_write_of_a_flash_leaves_a_bootable_board(world) -> None:
    from sim.clock import VirtualClock
    from sim.orbit import CircularOrbit
    from sim.world import World

    total = None
    write = 1
    while True:
        fresh = World(VirtualClock(), CircularOrbit(500.0), seed=1)
        boot, cut = flash_with_power_cut_at(fresh, write)
        assert boot._slot_ok(boot.running), write  # what it boots checks out
        assert boot.version in ("1.0.0", "2.0.0"), write
        if not cut:
            total = write - 1
            break
        write += 1
    assert total is not None and total >= 8  # every step of upload, activation and boot


def test_the_boot_count_survives_power_cycles_and_the_host_sees_each_restart(world) -> None:
    board = EmulatedThermalBoard(spec("thermal", power_channel=1), world)
    link = BoardLink("thermal", InProcessTransport(board.receive), timeout_s=0.2)
    assert link.call("tlm")["boot_count"] == 1
    for expected in (2, 3):
        world.set_switch(board.platform.channel, False)
        world.set_switch(board.platform.channel, True)
        assert link.call("tlm")["boot_count"] == expected  # kept in NVM, not in RAM
    link.call("reset")
    assert link.call("ping") is not None and link.boot == 4
    assert link.stats()["resets"] == 3
