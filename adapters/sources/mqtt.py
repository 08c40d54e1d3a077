"""MQTT feeds with paho-mqtt 2.x: a subscriber source for the twin and a publisher for
``parktwin emit``.

Why these settings (the issue's "no loss, no double counting when the broker restarts"):

* QoS 1 both ways: the broker keeps a message until the subscriber acknowledges it, and the
  publisher keeps it until the broker acknowledges it (at least once);
* a persistent session (MQTT 3.1.1 ``clean_session=False``) under a fixed client id: while
  the subscriber is away (or the broker restarts with ``persistence true``) the broker queues
  its messages and delivers them on reconnect;
* reconnect with back-off (``reconnect_delay_set(min, max)``: paho doubles the delay up to the
  maximum) from the network thread, also when the first connection fails;
* manual acknowledgements, in small batches: a message is acknowledged once the consumer has
  applied it (asked for the one after it); applied messages are acknowledged together every
  ``ack_every`` (10) messages and whenever the consumer has taken everything received, so
  payloads still in our inbox when the twin stops come back from the broker on its next
  start. Not more than 10: a broker sends a subscriber at most so many unacknowledged QoS 1
  messages (Mosquitto's ``max_inflight_messages``, 20 by default), and acknowledging half a
  window at a time keeps the other half flowing. (MQTT 5 would let the subscriber ask for a
  wider window, its Receive Maximum, which Mosquitto honours; but paho decodes MQTT 5
  properties on every PUBLISH, which cost ~20 µs more per message than the whole 3.1.1 path
  saves: measured, see docs/feed_events.md.) The publisher keeps paho's window of 20
  unacknowledged messages: paho scans the whole window on every acknowledgement, so a window
  of 1,000 doubled the publisher's CPU;
* at least once means a message can come twice (a PUBACK lost in the restart): the intake
  dedupes on the event id, so each event reaches the twin's state exactly once.

The broker must keep what it queues: Mosquitto's default ``max_queued_messages 1000`` drops
(silently, after acknowledging them to the publisher) QoS 1 messages beyond 1,000 queued for
a subscriber that is away or slower than the feed; set ``max_queued_messages 0`` and
``persistence true`` (docs/feed_events.md, "MQTT").
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from .base import Raw


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (or ``mqtt://HOST:PORT``) → (host, port); port defaults to 1883."""
    text = text.removeprefix("mqtt://").split("/", 1)[0]
    host, _, port = text.rpartition(":")
    if not host:
        return port or "localhost", 1883
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"MQTT address '{text}': port must be a number 1..65535")
    return host, int(port)


def _client(client_id: str, min_delay: float, max_delay: float) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    client.reconnect_delay_set(min_delay=max(1, int(min_delay)), max_delay=max(1, int(max_delay)))
    client.max_queued_messages_set(0)  # unbounded: nothing published is dropped while away
    return client


@dataclass
class MqttSource:
    """Raw payloads from an MQTT topic (QoS 1, persistent session ``client_id``).

    Iteration ends after ``idle_s`` seconds without a message (None: never) or ``stop()``.
    Each payload's receive time is the wall clock when it arrived (for the intake's future
    and clock-skew checks).

    Payloads are handed over in batches: the network thread appends each message to an inbox
    (a deque: no lock per message) and wakes the consumer only when it is waiting; the
    consumer takes everything in the inbox at once and yields it. A message counts as applied
    when the consumer asks for the one after it; applied messages are acknowledged together
    every ``ack_every`` messages, when the inbox is empty and when the iteration stops: never
    before they are applied.
    """

    host: str
    port: int = 1883
    topic: str = "parktwin/events"
    client_id: str = "parktwin-twin"
    idle_s: float | None = None
    min_delay: float = 1
    max_delay: float = 8
    #: applied messages acknowledged together (half of Mosquitto's default window of 20)
    ack_every: int = 10
    connected: threading.Event = field(default_factory=threading.Event)
    connects: int = 0
    _inbox: deque[tuple[Raw, int, int]] = field(default_factory=deque)
    _arrived: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> MqttSource:
        """Connect (retrying in the background until the broker is up) and subscribe."""
        self._client = client = _client(self.client_id, self.min_delay, self.max_delay)
        topic = self.topic
        where = f"mqtt:{topic}"
        inbox, arrived = self._inbox, self._arrived

        def on_connect(c, userdata, flags, reason_code, properties):
            if reason_code.is_failure:
                return
            self.connects += 1
            c.subscribe(topic, qos=1)  # the session keeps it; renewing is harmless
            self.connected.set()

        def on_disconnect(c, userdata, flags, reason_code, properties):
            self.connected.clear()

        def on_message(c, userdata, msg):
            # Not acknowledged here (manual acks): the PUBACK goes out once the consumer has
            # applied the payload, so a twin that dies with payloads in its inbox gets them
            # again from the broker.
            inbox.append((Raw(msg.payload, datetime.now(UTC), where), msg.mid, msg.qos))
            if not arrived.is_set():  # the consumer clears it before it waits
                arrived.set()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        client.manual_ack_set(True)
        client.connect_async(self.host, self.port, keepalive=10)
        client.loop_start()
        return self

    def pending(self) -> int:
        """Payloads received and not yet handed to the consumer."""
        return len(self._inbox)

    def stop(self) -> None:
        self._stop.set()
        self._arrived.set()
        client = getattr(self, "_client", None)
        if client is None:
            return
        if self.connected.is_set():
            # Make sure the broker has *read* our last acknowledgements before we close:
            # closing a socket with unread messages in it (the broker keeps sending) resets
            # the connection, and the broker then loses what it had not read yet, so
            # applied payloads came back on the next start (3 of 8 runs of the restart test
            # stopping after 25). The broker answers a SUBSCRIBE after everything sent before
            # it: renewing ours (harmless, the session has it) is the barrier.
            answered: set[int] = set()
            client.on_subscribe = lambda c, u, mid, *rest: answered.add(mid)
            _, mid = client.subscribe(self.topic, qos=1)
            deadline = time.monotonic() + 2
            while mid not in answered and time.monotonic() < deadline:
                time.sleep(0.005)
        client.disconnect()
        client.loop_stop()

    def __iter__(self) -> Iterator[Raw]:
        if getattr(self, "_client", None) is None:
            self.start()
        client, inbox, arrived, stop = self._client, self._inbox, self._arrived, self._stop
        ack_every = max(1, self.ack_every)
        applied: list[tuple[int, int]] = []  # (mid, qos) applied, not yet acknowledged

        def acknowledge() -> None:
            if not applied:
                return
            for mid, qos in applied:
                client.ack(mid, qos)
            applied.clear()

        last = time.monotonic()
        try:
            while not stop.is_set():
                if not inbox:
                    acknowledge()  # the batch is applied: let the broker send the next
                    arrived.clear()
                    if not inbox and not arrived.wait(0.2):
                        if self.idle_s is not None and time.monotonic() - last > self.idle_s:
                            return
                        continue
                    last = time.monotonic()
                for _ in range(len(inbox)):
                    raw, mid, qos = inbox.popleft()
                    yield raw
                    # The consumer came back for more: it has applied this payload.
                    if qos > 0:
                        applied.append((mid, qos))
                        if len(applied) >= ack_every:
                            acknowledge()
        finally:
            acknowledge()  # what was applied before the consumer stopped


@dataclass
class MqttPublisher:
    """Publishes payloads at QoS 1 from a persistent session; ``close()`` waits until the
    broker has acknowledged every one (reconnecting through broker restarts). Up to
    ``inflight`` messages wait for their acknowledgement at once (paho's default, 20: paho
    scans the window on every acknowledgement, so 1,000 doubled the publisher's CPU)."""

    host: str
    port: int = 1883
    topic: str = "parktwin/events"
    client_id: str = "parktwin-emit"
    connect_timeout: float = 30.0
    min_delay: float = 1
    max_delay: float = 8
    inflight: int = 20
    published: int = 0

    def __post_init__(self) -> None:
        # Acknowledgements are counted in on_publish, which paho calls once per QoS 1 message,
        # when its PUBACK arrives (a message queued while the broker is away has an error code
        # on its MQTTMessageInfo but is still sent on reconnect, so its info cannot tell us).
        # Only the network thread writes the count: no lock.
        self._acked = 0

        def on_publish(c, userdata, mid, reason_code, properties):
            self._acked += 1

        connected = threading.Event()

        def on_connect(c, userdata, flags, reason_code, properties):
            if not reason_code.is_failure:
                connected.set()

        self._client = _client(self.client_id, self.min_delay, self.max_delay)
        self._client.max_inflight_messages_set(self.inflight)
        self._client.on_publish = on_publish
        self._client.on_connect = on_connect
        self._client.connect_async(self.host, self.port, keepalive=10)
        self._client.loop_start()
        # Publishing before the first CONNACK queues messages that paho may then send out of
        # order (the ones published during the handshake overtake the queue): wait for it
        # (a broker that is down is waited for up to connect_timeout, then we queue).
        connected.wait(self.connect_timeout)

    def publish(self, payload: str | bytes) -> None:
        """Queue one payload (sent now if connected, else on reconnect)."""
        self._client.publish(self.topic, payload, qos=1)
        self.published += 1

    def unacknowledged(self) -> int:
        return self.published - self._acked

    def close(self, timeout: float = 60.0) -> int:
        """Wait for every acknowledgement (up to ``timeout`` s); returns how many are missing."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.unacknowledged():
            time.sleep(0.05)
        missing = self.unacknowledged()
        self._client.disconnect()
        self._client.loop_stop()
        return missing


__all__ = ["MqttPublisher", "MqttSource", "parse_address"]
