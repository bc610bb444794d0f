"""The chairs and the board over an MQTT broker (Mosquitto), with paho-mqtt 2.x.

Owns: ``BrokerConfig`` and ``parse_broker`` (``mqtt://HOST:PORT`` or ``mqtts://`` for TLS;
user name and password from settings or the URL), the topics
(``chairside/v1/<clinic>/<chair>/state|alarm|online``), ``ChairPublisher`` — a chair's
console publishing its state (retained, QoS 1, on change and at least every few seconds),
every alarm event as recorded (QoS 1, kept in a bounded queue until the broker has it) and
its presence (retained ``online``; the Last Will sets ``offline``) — and ``BoardSubscriber``,
which feeds a ``BoardModel``. The chair never depends on the broker: publishing runs on
paho's own thread, a broker that is down or slow only queues, and ``link_up`` tells the
console whether to show its low-priority "board link down" notice.
Must not import: textual, chairside.ui.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from chairside.board.state import AlarmMessage, BoardModel, alarm_message, board_settings, chair_state
from chairside.domain.events import ALARM_EVENT_KINDS

__all__ = ["BoardSubscriber", "BrokerConfig", "BrokerError", "ChairPublisher", "parse_broker", "topic"]

log = logging.getLogger("chairside.board")
ROOT = "chairside/v1"


class BrokerError(ValueError):
    """A broker URL or setting that cannot be used (the message says which and why)."""


@dataclass(frozen=True)
class BrokerConfig:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker(url: str, *, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None) -> BrokerConfig:
    u = urlparse(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise BrokerError(f"{url}: a broker is mqtt://HOST:PORT (or mqtts:// for TLS)")
    try:
        port = u.port or (8883 if u.scheme == "mqtts" else 1883)
    except ValueError:
        raise BrokerError(f"{url}: the port is not a number from 1 to 65535") from None
    return BrokerConfig(u.hostname, port, u.scheme == "mqtts", username or (unquote(u.username) if u.username else None),
                        password or (unquote(u.password) if u.password else None), ca_file)


def topic(clinic: str, chair: str, leaf: str) -> str:
    return f"{ROOT}/{clinic}/{chair}/{leaf}"


def _client(cfg: BrokerConfig, client_id: str, *, clean_session: bool = True) -> mqtt.Client:
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=clean_session)
    if cfg.username:
        c.username_pw_set(cfg.username, cfg.password)
    if cfg.tls:
        c.tls_set(ca_certs=cfg.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.reconnect_delay_set(min_delay=1, max_delay=10)
    return c


def _state_key(d: dict[str, Any]) -> str:
    """A chair state without what changes every second on its own (ages, send time)."""
    d = dict(d)
    d.pop("sent", None)
    vitals = {k: {kk: vv for kk, vv in v.items() if kk != "age_s"} for k, v in d.get("vitals", {}).items()}
    d["vitals"] = vitals
    nb = d.get("next_bp_due_s")
    d["next_bp_due_s"] = None if nb is None else round(nb / 60.0)
    return json.dumps(d, sort_keys=True, default=str)


class ChairPublisher:
    """Publish one chair's console (a ``MonitorService``) to the broker."""

    def __init__(self, service: Any, cfg: BrokerConfig, *, clinic: str, chair: str, keepalive: int = 5,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        pub = board_settings()["publish"]
        self.service, self.cfg, self.clinic, self.chair = service, cfg, clinic, chair
        self.every_s = float(pub["state_every_s"])
        self.qos = int(pub["qos"])
        self.queue: deque[AlarmMessage] = deque(maxlen=int(pub["alarm_queue_max"]))
        self.dropped = 0
        self._mono = monotonic
        self._lock = threading.Lock()
        self._inflight: dict[int, AlarmMessage] = {}
        self._last_key = ""
        self._last_sent = -1e18
        self._latest: str | None = None
        self._connected = threading.Event()
        self._stop = threading.Event()
        self.client = _client(cfg, f"chairside-{clinic}-{chair}-{uuid.uuid4().hex[:8]}")
        self.client.will_set(topic(clinic, chair, "online"), "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.keepalive = keepalive
        self._unsubs: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None

    @property
    def link_up(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._unsubs.append(self.service.subscribe(self._on_snapshot))
        self._unsubs.append(self.service.subscribe_events(self._on_event))
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.keepalive)
        except (OSError, ValueError) as exc:  # a name that does not resolve: keep trying in the loop
            log.warning("board: broker %s: %s", self.cfg.url, exc)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._heartbeat, daemon=True, name="chairside-board-publish")
        self._thread.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """A clean goodbye: the alarm events still in flight or queued reach the broker (for up
        to ``drain_s``: the session's last events, its clears at close, are not dropped), then
        ``offline`` (retained), then disconnect."""
        self._stop.set()
        for u in self._unsubs:
            u()
        end = self._mono() + drain_s
        while self._connected.is_set() and self._mono() < end:
            with self._lock:
                pending = bool(self._inflight) or bool(self.queue)
                queued = list(self.queue)
                self.queue.clear()
            for msg in queued:
                self._send_alarm(msg)
            if not pending:
                break
            time.sleep(0.05)
        if self._connected.is_set():
            info = self.client.publish(topic(self.clinic, self.chair, "online"), "offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (paho's thread)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("board: broker %s refused the connection: %s", self.cfg.url, reason)
            return
        self._connected.set()
        client.publish(topic(self.clinic, self.chair, "online"), "online", qos=1, retain=True)
        with self._lock:
            latest = self._latest
            queued = list(self.queue)
            self.queue.clear()
        if latest is not None:
            self._send_state(latest)
        for msg in queued:
            self._send_alarm(msg)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        with self._lock:  # what the broker never acknowledged goes back in the queue, in order
            back = [self._inflight[m] for m in sorted(self._inflight)]
            self._inflight.clear()
            for msg in reversed(back):
                self.queue.appendleft(msg)

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self._inflight.pop(mid, None)

    # -- the service's side (its publish thread): never blocks on the broker
    def _on_snapshot(self, snap: Any) -> None:
        store = getattr(snap.device, "store", None)
        last_seq = int(getattr(store, "events", 0) or 0)
        st = chair_state(snap, self.chair, last_seq=last_seq)
        payload = st.model_dump_json(by_alias=True)
        key = _state_key(json.loads(payload))
        now = self._mono()
        with self._lock:
            self._latest = payload
            due = key != self._last_key or now - self._last_sent >= self.every_s
            if due:
                self._last_key, self._last_sent = key, now
        if due and self._connected.is_set():
            self._send_state(payload)

    def _heartbeat(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                payload = self._latest
                due = payload is not None and self._mono() - self._last_sent >= self.every_s
                if due:
                    self._last_sent = self._mono()
            if due and self._connected.is_set():
                self._send_state(payload)

    def _on_event(self, ev: Any) -> None:
        if ev.kind not in ALARM_EVENT_KINDS:
            return
        msg = alarm_message(self.chair, ev)
        if self._connected.is_set():
            self._send_alarm(msg)
        else:
            with self._lock:
                if len(self.queue) == self.queue.maxlen:
                    self.dropped += 1
                self.queue.append(msg)

    def _send_state(self, payload: str) -> None:
        self.client.publish(topic(self.clinic, self.chair, "state"), payload, qos=self.qos, retain=True)

    def _send_alarm(self, msg: AlarmMessage) -> None:
        info = self.client.publish(topic(self.clinic, self.chair, "alarm"), msg.model_dump_json(), qos=self.qos)
        with self._lock:
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                self._inflight[info.mid] = msg
            else:
                self.queue.append(msg)


class BoardSubscriber:
    """Subscribe to every chair of ``clinic`` (``+``: every clinic) and feed ``model``."""

    def __init__(self, cfg: BrokerConfig, model: BoardModel, *, clinic: str = "+", client_id: str | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.model, self.clinic = cfg, model, clinic
        self._mono = monotonic
        self.connected = threading.Event()
        self.last_error = ""
        # a persistent session under a stable name: what the chairs publish while the board is
        # away (a broker restart, a board restart) is kept for it by the broker (QoS 1)
        self.client = _client(cfg, client_id or f"chairside-board-{clinic.replace('+', 'all')}-{socket.gethostname()}",
                              clean_session=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message

    def start(self) -> None:
        try:
            self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=5)
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            self.last_error = f"the broker refused the connection: {reason}"
            return
        self.connected.set()
        self.last_error = ""
        for leaf in ("state", "alarm", "online"):
            client.subscribe(f"{ROOT}/{self.clinic}/+/{leaf}", qos=1)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        self.last_error = f"board link down ({reason})"

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 5 or "/".join(parts[:2]) != ROOT:
            self.model.foreign += 1
            return
        chair, leaf = parts[3], parts[4]
        if leaf == "state":
            self.model.on_state(chair, msg.payload, self._mono())
        elif leaf == "alarm":
            self.model.on_alarm(chair, msg.payload, self._mono())
        elif leaf == "online":
            self.model.on_online(chair, msg.payload)
        else:
            self.model.foreign += 1

