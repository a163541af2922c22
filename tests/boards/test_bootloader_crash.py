"""The bootloader killed with SIGKILL at random moments while a host flashes it: full
uploads, uploads abandoned midway (the host killed), uploads started while an image is
on trial, activations, confirmations and trial windows running out. After every kill
the board powers up again from its NVM and must boot a verified image, and go on
booting verified images through whatever trial was left pending."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

from boards.firmware.bootloader import CHUNK_BYTES, NO_CONFIRM, TRIAL_S, Bootloader
from boards.firmware.server import OpError
from hal import image
from hal.boardops import FlashBegin, FlashChunk
from tests.crash import Child, Trial, kill_trials, tally, trial_count

FACTORY = image.build("thermal", "1.0.0", b"factory" * 300)


class FileNvm:
    """A board's NVM as files, each write atomic (tmp + rename), so that it outlives
    the process; `step()` runs before every write."""

    def __init__(self, root: Path, child: Child | None = None) -> None:
        self.root = root
        self.child = child
        self.up_s = 0.0

    def nvm_read(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def nvm_write(self, key: str, data: bytes) -> None:
        if self.child is not None:
            self.child.step()
        tmp = self.root / f"{key}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, self.root / key)

    def uptime_s(self) -> float:
        return self.up_s


def upload(boot: Bootloader, img: bytes, chunks: int | None = None) -> None:
    """begin, chunks (all of them, or the first `chunks`), end."""
    boot.begin(FlashBegin(img[:image.HEADER_BYTES]))
    payload = img[image.HEADER_BYTES:]
    offsets = list(range(0, len(payload), CHUNK_BYTES))
    for offset in offsets[:chunks]:
        part = payload[offset:offset + CHUNK_BYTES]
        boot.chunk(FlashChunk(offset, part, zlib.crc32(part)))
    if chunks is None:
        boot.end(None)


def power_up(nvm: FileNvm) -> Bootloader:
    nvm.up_s = 0.0
    return Bootloader("thermal", nvm, FACTORY)


@pytest.mark.crash
def test_a_board_killed_at_any_moment_of_flashing_boots_a_verified_image(tmp_path) -> None:
    outcomes = {"trial": 0, "refused_during_trial": 0, "boots": 0}

    def writer(child: Child) -> None:
        rng = child.rng
        nvm = FileNvm(tmp_path, child)
        boot = power_up(nvm)
        for n in range(60):
            action = rng.choice(["upload", "upload", "abandon", "activate", "reboot",
                                 "expire", "confirm"])
            try:
                if action in ("upload", "abandon"):
                    payload = rng.randbytes(rng.randrange(1, 5000))
                    if rng.random() < 0.4:
                        payload = NO_CONFIRM + payload  # never confirms: rolls back
                    img = image.build("thermal", f"2.{child.steps}.{n}", payload)
                    upload(boot, img, rng.randrange(0, 5) if action == "abandon" else None)
                elif action == "activate":
                    boot.activate(None)
                    boot = power_up(nvm)  # the board reboots into the trial
                elif action == "reboot":
                    boot = power_up(nvm)
                elif action == "expire":
                    nvm.up_s = TRIAL_S + 1
                    if boot.tick():
                        boot = power_up(nvm)
                else:
                    boot.confirm(None)
            except OpError as e:
                child.report(f"refused {e}")

    def check(trial: Trial) -> None:
        outcomes["refused_during_trial"] += sum("is on trial" in r for r in trial.reports)
        nvm = FileNvm(tmp_path)
        for _ in range(3):  # power up, then let any trial run out, twice
            boot = power_up(nvm)
            assert boot._slot_ok(boot.running), f"trial {trial.index}: boots slot " \
                f"{boot.running}, which does not verify"
            assert boot.boot_cause != "factory", f"trial {trial.index}: no verified image left"
            outcomes["trial"] += boot.boot_cause == "trial"
            outcomes["boots"] += 1
            nvm.up_s = TRIAL_S + 1
            if not boot.tick():
                break

    trials = kill_trials(writer, check, trials=trial_count(150), seed=3, max_delay_s=0.04,
                         max_steps=120)
    assert outcomes["refused_during_trial"] > 0 and outcomes["trial"] > 0, outcomes
    tally("flashing", trials, boots_checked=outcomes["boots"],
          boots_into_a_trial=outcomes["trial"],
          uploads_refused_during_a_trial=outcomes["refused_during_trial"],
          boots_of_an_unverified_image=0, factory_fallbacks=0)


def test_an_upload_during_a_trial_is_refused_and_the_rollback_target_kept(tmp_path) -> None:
    nvm = FileNvm(tmp_path)
    boot = power_up(nvm)
    upload(boot, image.build("thermal", "2.0.0", NO_CONFIRM + b"t" * 3000))
    boot.activate(None)
    boot = power_up(nvm)
    assert (boot.running, boot.boot_cause, boot.version) == ("b", "trial", "2.0.0")
    with pytest.raises(OpError, match="image 2.0.0 is on trial in slot b: it must confirm "
                                      "itself or roll back before another upload"):
        upload(boot, image.build("thermal", "3.0.0", b"u" * 3000))
    nvm.up_s = TRIAL_S + 1
    assert boot.tick()
    boot = power_up(nvm)
    assert (boot.running, boot.boot_cause, boot.version) == ("a", "rollback", "1.0.0")
    upload(boot, image.build("thermal", "3.0.0", b"u" * 3000))  # now there is a free slot
    boot.activate(None)
    assert power_up(nvm).version == "3.0.0"


def test_a_damaged_rollback_target_is_never_booted(tmp_path) -> None:
    nvm = FileNvm(tmp_path)
    boot = power_up(nvm)
    upload(boot, image.build("thermal", "2.0.0", NO_CONFIRM + b"t" * 3000))
    boot.activate(None)
    power_up(nvm)
    (tmp_path / "slot.a.data.1024").write_bytes(b"rot" * 10)  # the confirmed image decays
    nvm.up_s = TRIAL_S + 1
    boot = power_up(nvm)  # the trial is over: roll back... to what verifies
    assert boot._slot_ok(boot.running) and boot.running == "b"
    for key in ("slot.a.data.0", "slot.b.data.0"):
        (tmp_path / key).write_bytes(b"gone")  # both slots damaged: the factory image
    boot = power_up(nvm)
    assert boot.boot_cause == "factory" and boot._slot_ok(boot.running)
    assert boot.version == "1.0.0"
