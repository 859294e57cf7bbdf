"""A private PulseAudio daemon with null sinks: real sound devices on a machine with no card.

PortAudio sees no device until a sound server runs. This starts one in a temp dir, isolated
from any session daemon (its own HOME, runtime dir and socket), with two null sinks:

- `vl_speaker`: where the assistant plays. Its monitor comes back as a microphone, so what is
  played returns (a loopback), which is how tests and the bench check a device end to end.
- `vl_user`: where a test plays a talking user (`paplay --device=vl_user`); its monitor is the
  microphone of a `voiceloop run` that should hear only the user.

PortAudio (Debian's 19.6) reaches PulseAudio through ALSA's `pulse` plugin, which shows only
the `pulse` and `default` devices. To make the sinks pickable by name, as a user picks a USB
mic, an ALSA config under the daemon's XDG_CONFIG_HOME names one PCM per sink or monitor:
`vl_speaker`, `vl_loopback_mic`, `vl_user_mic`, plus `vl_48k_only` (ALSA's a52 encoder over
the speaker sink: a real device that refuses every rate but 48 kHz, as many USB ones do).

A null sink renders in 2-second blocks unless a client asks for low latency, so a PortAudio
stream on it starts ~2 s late and runs in bursts; a sound card's clock does not. One `parec
--latency-msec=10` per monitor makes each null sink tick like a card.

The environment (`PULSE_SERVER`, `XDG_CONFIG_HOME`) must be in place before PortAudio
initialises: pass `server.env()` to a subprocess, or use `server.activate()` in-process, which
also re-initialises PortAudio if sounddevice was already imported.

    with private_pulse() as server, server.activate():
        ...  # sounddevice / voiceloop devices now see vl_speaker, vl_loopback_mic, ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SPEAKER_SINK = "vl_speaker"
USER_SINK = "vl_user"
SINK_RATE = 48_000

# PortAudio device names (ALSA PCMs) this server provides.
SPEAKER_DEVICE = "vl_speaker"
LOOPBACK_MIC = "vl_loopback_mic"
USER_MIC = "vl_user_mic"
FIXED_48K_DEVICE = "vl_48k_only"

START_TIMEOUT_S = 10.0

_ASOUNDRC = """\
# Written by voiceloop.testing.pulse: one ALSA PCM per null sink or monitor of a private
# PulseAudio daemon, so PortAudio lists them by name.
pcm.{speaker_device} {{
  type pulse
  device "{speaker_sink}"
  hint {{ show on description "voiceloop test speaker (null sink {speaker_sink})" }}
}}
pcm.{loopback_mic} {{
  type pulse
  device "{speaker_sink}.monitor"
  hint {{ show on description "voiceloop loopback mic (monitor of {speaker_sink})" }}
}}
pcm.{user_mic} {{
  type pulse
  device "{user_sink}.monitor"
  hint {{ show on description "voiceloop user mic (monitor of {user_sink})" }}
}}
pcm.{fixed_device} {{
  type a52
  slavepcm "{speaker_device}"
  rate 48000
  hint {{ show on description "a device that accepts 48 kHz only" }}
}}
"""


class PulseUnavailable(RuntimeError):
    """PulseAudio or the ALSA pulse plugin is not installed; says which Debian package to get."""


def missing_parts() -> str | None:
    """Why a private daemon cannot run here, or None when it can."""
    for tool, package in (
        ("pulseaudio", "pulseaudio"),
        ("pactl", "pulseaudio-utils"),
        ("parec", "pulseaudio-utils"),
    ):
        if shutil.which(tool) is None:
            return f"`{tool}` not found (apt-get install {package})"
    plugin_dirs = [
        Path(p)
        for p in (
            "/usr/lib/x86_64-linux-gnu/alsa-lib",
            "/usr/lib/aarch64-linux-gnu/alsa-lib",
            "/usr/lib/alsa-lib",
            "/usr/lib64/alsa-lib",
        )
    ]
    if not any((d / "libasound_module_pcm_pulse.so").exists() for d in plugin_dirs):
        return "ALSA's pulse plugin is missing (apt-get install libasound2-plugins)"
    return None


def has_fixed_rate_device() -> bool:
    """Whether ALSA's a52 plugin (the 48 kHz-only device) is installed."""
    return any(
        Path(d, "libasound_module_pcm_a52.so").exists()
        for d in (
            "/usr/lib/x86_64-linux-gnu/alsa-lib",
            "/usr/lib/aarch64-linux-gnu/alsa-lib",
            "/usr/lib/alsa-lib",
        )
    )


@dataclass
class PulseServer:
    root: Path
    process: subprocess.Popen[bytes]
    _clocks: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _owns_root: bool = False

    @property
    def socket(self) -> Path:
        return self.root / "native"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def config_home(self) -> Path:
        return self.root / "config"

    def env(self) -> dict[str, str]:
        """What a client process needs to reach this server and see its named devices."""
        return {"PULSE_SERVER": f"unix:{self.socket}", "XDG_CONFIG_HOME": str(self.config_home)}

    def client_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        return {**(os.environ if base is None else base), **self.env()}

    @contextlib.contextmanager
    def activate(self) -> Iterator[PulseServer]:
        """Points this process at the server (and re-initialises PortAudio if loaded)."""
        saved = {key: os.environ.get(key) for key in self.env()}
        os.environ.update(self.env())
        _reinitialize_portaudio()
        try:
            yield self
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            _reinitialize_portaudio()

    def pactl(self, *args: str) -> str:
        result = subprocess.run(
            ["pactl", *args], check=False, env=self.client_env(), capture_output=True, text=True, timeout=10
        )
        if result.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def play(self, wav: Path, sink: str = USER_SINK) -> subprocess.Popen[bytes]:
        """Plays a WAV file into a sink (the talking user); returns the running paplay."""
        return subprocess.Popen(
            ["paplay", f"--device={sink}", str(wav)], env=self.client_env(), stderr=subprocess.PIPE
        )

    def record(self, source: str, wav: Path, rate: int = 16_000) -> subprocess.Popen[bytes]:
        """Records a source (e.g. `vl_speaker.monitor`) to a WAV file until terminated."""
        return subprocess.Popen(
            [
                "parec",
                f"--device={source}",
                "--file-format=wav",
                "--format=s16le",
                f"--rate={rate}",
                "--channels=1",
                "--latency-msec=20",
                str(wav),
            ],
            env=self.client_env(),
            stderr=subprocess.PIPE,
        )

    def go_away(self) -> None:
        """Stops the daemon under its clients: what PortAudio sees when a sound server crashes
        or restarts, or (on raw ALSA) when a USB card is pulled out."""
        _stop_process(self.process)

    def unplug(self, sink: str = SPEAKER_SINK) -> None:
        """Removes a sink (and its monitor) as if its device were pulled out. PulseAudio then
        moves the streams on it to the default sink and source: clients see no error."""
        for line in self.pactl("list", "short", "modules").splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1] == "module-null-sink" and f"sink_name={sink}" in parts[2]:
                self.pactl("unload-module", parts[0])
                return
        raise RuntimeError(f"no null sink named {sink}")

    def stop(self) -> None:
        """Stops the clock clients and the daemon by pid; removes the temp dir we made."""
        for clock in self._clocks:
            _stop_process(clock)
        self._clocks.clear()
        _stop_process(self.process)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)


def _stop_process(process: subprocess.Popen[bytes], grace_s: float = 3.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)


def _reinitialize_portaudio() -> None:
    """PortAudio reads the device list (and PULSE_SERVER) when it initialises; sounddevice
    initialises it at import, so a process that imported it earlier must re-initialise."""
    sd = sys.modules.get("sounddevice")
    if sd is not None:
        sd._terminate()
        sd._initialize()


def start_pulse(root: Path | None = None) -> PulseServer:
    """Starts a private daemon; raises PulseUnavailable if the parts are missing."""
    if (reason := missing_parts()) is not None:
        raise PulseUnavailable(reason)
    owns = root is None
    root = Path(tempfile.mkdtemp(prefix="voiceloop-pulse-")) if root is None else Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "config" / "alsa").mkdir(parents=True, exist_ok=True)
    (root / "config" / "alsa" / "asoundrc").write_text(
        _ASOUNDRC.format(
            speaker_device=SPEAKER_DEVICE,
            speaker_sink=SPEAKER_SINK,
            loopback_mic=LOOPBACK_MIC,
            user_mic=USER_MIC,
            user_sink=USER_SINK,
            fixed_device=FIXED_48K_DEVICE,
        )
    )
    daemon_env = {
        **os.environ,
        "HOME": str(root),
        "XDG_RUNTIME_DIR": str(root),
        "PULSE_RUNTIME_PATH": str(root),
        "XDG_CONFIG_HOME": str(root / "config"),
    }
    daemon_env.pop("PULSE_SERVER", None)
    log = (root / "pulseaudio.log").open("wb")
    process = subprocess.Popen(
        [
            "pulseaudio",
            "--daemonize=no",
            "-n",  # no default.pa: nothing but what is loaded here
            "--exit-idle-time=-1",
            "--disable-shm=yes",
            "--use-pid-file=yes",
            "-L",
            f"module-native-protocol-unix auth-anonymous=1 socket={root / 'native'}",
            "-L",
            f"module-null-sink sink_name={SPEAKER_SINK} rate={SINK_RATE} channels=1",
            "-L",
            f"module-null-sink sink_name={USER_SINK} rate={SINK_RATE} channels=1",
            "-L",
            "module-always-sink",
        ],
        env=daemon_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C meant for the tests does not kill it mid-test
    )
    log.close()
    server = PulseServer(root=root, process=process, _owns_root=owns)
    try:
        _wait_ready(server)
        server.pactl("set-default-sink", SPEAKER_SINK)
        server.pactl("set-default-source", f"{SPEAKER_SINK}.monitor")
        for sink in (SPEAKER_SINK, USER_SINK):
            server._clocks.append(
                subprocess.Popen(
                    ["parec", f"--device={sink}.monitor", "--latency-msec=10", "--raw"],
                    env=server.client_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _restart_sink_timers(server)
    except BaseException:
        server.stop()
        raise
    return server


def _restart_sink_timers(server: PulseServer) -> None:
    """A null sink applies a new latency only when its current block ends, 2 s after it
    started; suspending and resuming it starts a new block at the clocks' 10 ms now. Waits
    until both clocks are connected, or the first stream would still start ~2 s late."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        outputs = server.pactl("list", "short", "source-outputs").strip().splitlines()
        if len(outputs) >= len(server._clocks):
            break
        time.sleep(0.02)
    for sink in (SPEAKER_SINK, USER_SINK):
        server.pactl("suspend-sink", sink, "1")
        server.pactl("suspend-sink", sink, "0")


def _wait_ready(server: PulseServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.root / "pulseaudio.log").read_text(errors="replace")[-2000:]
            raise PulseUnavailable(f"pulseaudio exited with {server.process.returncode}: {log}")
        if server.socket.exists():
            probe = subprocess.run(
                ["pactl", "info"], check=False, env=server.client_env(), capture_output=True, timeout=5
            )
            if probe.returncode == 0:
                return
        time.sleep(0.05)
    raise PulseUnavailable(f"pulseaudio did not answer within {START_TIMEOUT_S:.0f} s")


@contextlib.contextmanager
def private_pulse(root: Path | None = None) -> Iterator[PulseServer]:
    server = start_pulse(root)
    try:
        yield server
    finally:
        server.stop()
