"""Health and log publishing inside the Airflow components (registered by plugins/datamover_streams.py).

Which hook starts what, per component (Airflow 3.3):
- scheduler, triggerer, dag-processor: the lifecycle hooks `on_starting` / `before_stopping`, which
  Airflow calls with the component's Job. A background thread then publishes the member's health every
  interval and tails the log files configured for that component (log_publishing.yaml).
- api-server: no lifecycle hook fires there; the plugin's FastAPI app starts and stops the same
  publishing in its lifespan (Airflow enters the lifespans of mounted plugin apps).
- task processes (every executor's worker: LocalExecutor, Celery, Kubernetes, Edge): `on_starting` with
  the TaskRunnerMarker starts the health of member `<host>.worker` while the task runs, and
  `on_task_instance_running` attaches a handler that publishes the package's log records of the task
  until `on_task_instance_success` / `_failed`.

Nothing here may slow down or fail the component: configs are read and clients built in a background
thread (task logs: the producer is built without a network round trip), every error becomes one
warning, Kafka clients never block (datamover.hooks.kafka.SideChannel), and a forked child (LocalExecutor
workers, DAG parsing processes) drops what it inherited from its parent without touching it.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from airflow.listeners import hookimpl

# Imported here, in the thread that loads plugins, never first in the publishing thread (see _ForkGuard).
from datamover.hooks.kafka import RDKAFKA_LOGGER_PREFIX
from datamover.hooks.streams import StreamChannel, ensure_log_topics, file_tailer, log_identity
from datamover.streams.definition import stream
from datamover.streams.health import HEALTH_STREAM, HealthPublisher, Member
from datamover.streams.logs import LOGS_STREAM, LogEvents, Record, StreamLogHandler, structlog_record
from datamover.streams.settings import (
    COMPONENTS,
    HealthConfig,
    LogPublishingConfig,
    health_config,
    log_publishing_config,
)
from datamover.streams.tail import FileTailer

log = logging.getLogger(__name__)

JOB_COMPONENTS = {
    "SchedulerJob": "scheduler",
    "TriggererJob": "triggerer",
    "DagProcessorJob": "dag-processor",
}
_CLI_COMPONENTS = {"scheduler", "triggerer", "dag-processor", "api-server"}


def component_of(component: Any) -> str | None:
    """The component name of a lifecycle hook's `component` argument (None: not one that publishes).

    A Job gets its job_type from its runner just after `on_starting`, so this waits a moment for it;
    the command line (`airflow scheduler`) answers when it never comes."""
    if type(component).__name__ == "TaskRunnerMarker":
        return "worker"
    for _ in range(50):
        job_type = getattr(component, "job_type", None)
        if job_type in JOB_COMPONENTS:
            return JOB_COMPONENTS[job_type]
        time.sleep(0.1)
    argv = [os.path.basename(a) for a in sys.argv[:3]]
    return next((a for a in argv if a in _CLI_COMPONENTS), None)


class _ForkGuard:
    """Airflow components fork (the triggerer its trigger runner, the scheduler its LocalExecutor workers,
    the dag-processor a parser per file). A child forked while another thread holds a Python lock, e.g.
    is half-way through an import, deadlocks on it. So the publishing thread does its setup (imports,
    configs, the connection lookup, building clients) holding this guard, and a fork waits for it (at
    most `wait_s`); network waits (topic creation) and the publishing loops run outside it."""

    def __init__(self, wait_s: float = 15) -> None:
        self.wait_s = wait_s
        self._lock = threading.Lock()
        self._held_for_fork = False

    def __enter__(self) -> _ForkGuard:
        self._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def before_fork(self) -> None:
        self._held_for_fork = self._lock.acquire(timeout=self.wait_s)

    def after_fork_in_parent(self) -> None:
        if self._held_for_fork:
            self._held_for_fork = False
            self._lock.release()

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # the child has no publishing thread
        self._held_for_fork = False


_fork_guard = _ForkGuard()


class Publishing:
    """The publishers of one process: health (a thread) and file tailers (a thread per file)."""

    def __init__(self, component: Callable[[], str | None]) -> None:
        self._component = component
        self.component: str | None = None
        self.member_id: str | None = None
        self.health: HealthPublisher | None = None
        self.channel: StreamChannel | None = None
        self.tailers: list[FileTailer] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = threading.Event()

    def start(self) -> Publishing:
        thread = threading.Thread(target=self._start, name="datamover-publishing", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def wait_started(self, timeout: float) -> bool:
        return self._started.wait(timeout)

    def _start(self) -> None:
        try:
            self.component = self._component()  # may wait a moment for the Job's type (no lock held)
            if self.component not in COMPONENTS or self._stop.is_set():
                return
            with _fork_guard:
                health = health_config()
                self.member_id = health.member.member(self.component)
                self._build_health(health)
                logs = log_publishing_config() if self.component != "worker" else None
                if logs is not None and logs.enabled:
                    self._build_tailers(logs)
            # network waits, outside the guard
            if self.channel is not None:
                self.channel.create_topics(self.channel.events_topic, partitions=1)
            if self.tailers and logs is not None:
                try:
                    ensure_log_topics(logs)
                except Exception as exc:
                    log.warning("Log topics not checked/created (%s); the tailers retry on their own", exc)
            if self.health is not None:
                self._spawn(self.health.run, "datamover-health")
            for tailer in self.tailers:
                self._spawn(tailer.run, f"datamover-tail-{os.path.basename(tailer.path)}")
        except Exception as exc:  # never into the component
            log.warning("Health/log publishing not started in %s: %s", self.component or "this process", exc)
        finally:
            self._started.set()

    def _spawn(self, target: Callable[[threading.Event], None], name: str) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _build_health(self, health: HealthConfig) -> None:
        publisher = health.publisher
        if not publisher.enabled or self.component not in publisher.components:
            log.info("Health publishing is off for %s (health.yaml publisher)", self.component)
            return
        self.channel = StreamChannel(
            publisher.kafka_conn_id, publisher.topic, create_topics=False, logger=log
        )
        member = health.member
        self.health = HealthPublisher(
            self.channel.publish,
            stream(HEALTH_STREAM),
            Member(member.cluster_id, member.network_partition_id, member.partition_id, self.member_id or ""),
            interval_s=publisher.interval_s,
            poll=self.channel.channel.poll,
            logger=log,
        )
        log.info(
            "Publishing health of member %s every %g s on topic %s",
            self.member_id,
            publisher.interval_s,
            publisher.topic,
        )

    def _build_tailers(self, config: LogPublishingConfig) -> None:
        for file in (f for f in config.files if f.component == self.component):
            tailer = file_tailer(config, file, self.member_id or "", create_topics=False, logger=log)
            self.tailers.append(tailer)
            log.info("Publishing the lines of %s on topic %s", file.path, config.topic)

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self.channel is not None:
            # what is still queued after this is dropped and counted (a task process must not linger)
            self.channel.close(2 if self.component == "worker" else 5)
            self.channel = None


class TaskLogs:
    """Publishes the package's log records of one task instance (stdlib loggers and, through a structlog
    processor, the package operators' `self.log`) until `close()`."""

    def __init__(self, task_instance: Any) -> None:
        config = log_publishing_config()
        self.enabled = config.enabled and config.task_logs.enabled
        if not self.enabled:
            return
        tl = config.task_logs
        member_id = health_config().member.member("worker")
        ti = task_instance
        self.channel = StreamChannel(config.kafka_conn_id, config.topic, create_topics=False, logger=log)
        self.channel.create_topics_in_background()  # never delay the task for it
        self.events = LogEvents(
            stream(LOGS_STREAM),
            log_identity(config, member_id),
            app_name=f"{ti.dag_id}.{ti.task_id}",
            instance=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}/{ti.try_number}",
        )
        self.member_id = member_id
        self._key = member_id.encode()
        self.level = logging.getLevelName(tl.level)
        self.handler = StreamLogHandler(self.publish, self.level)
        # Not the transport's own log lines (librdkafka's, of this very channel): publishing them would
        # feed an outage back into the channel it is about.
        self.handler.addFilter(lambda record: not record.name.startswith(RDKAFKA_LOGGER_PREFIX))
        self.loggers = [logging.getLogger(name) for name in tl.loggers]
        for logger in self.loggers:
            logger.addHandler(self.handler)
            if logger.getEffectiveLevel() > self.level:
                logger.setLevel(self.level)
        self.prefixes = tuple(tl.structlog_prefixes)
        self._processors: list[Any] | None = None
        if self.prefixes:
            self._tap_structlog()

    def publish(self, record: Record) -> bool:
        return self.channel.publish_log(self.events, record, self._key)

    def _tap(self, _logger: Any, _method: str, event_dict: Any) -> Any:
        try:
            name = str(event_dict.get("logger") or event_dict.get("logger_name") or "")
            level = logging.getLevelName(str(event_dict.get("level", "info")).upper())
            ours = name.startswith(self.prefixes) and not name.startswith(RDKAFKA_LOGGER_PREFIX)
            if ours and isinstance(level, int) and level >= self.level:
                self.publish(structlog_record(event_dict))
        except Exception:  # never into the code that logs
            self.handler.failed += 1
        return event_dict

    def _tap_structlog(self) -> None:
        import structlog

        processors = structlog.get_config()["processors"]
        if isinstance(processors, list) and processors:
            # in place: loggers bound earlier share this list; before the renderer, which ends the chain
            processors.insert(len(processors) - 1, self._tap)
            self._processors = processors

    def close(self, timeout: float = 5) -> int:
        if not self.enabled:
            return 0
        for logger in self.loggers:
            logger.removeHandler(self.handler)
        if self._processors is not None and self._tap in self._processors:
            self._processors.remove(self._tap)
        return self.channel.close(timeout)


# ------------------------------------------------------------------ per-process state and the hooks

_publishing: Publishing | None = None
_task_logs: TaskLogs | None = None
_inherited: list[Any] = []  # a forked child keeps its parent's clients alive but never touches them


def _forget_inherited() -> None:
    global _publishing, _task_logs
    _inherited.extend(x for x in (_publishing, _task_logs) if x is not None)
    _publishing = _task_logs = None


def _after_fork_in_child() -> None:
    _fork_guard.after_fork_in_child()
    _forget_inherited()


os.register_at_fork(
    before=_fork_guard.before_fork,
    after_in_parent=_fork_guard.after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


def start_publishing(component: Any) -> Publishing | None:
    """Start this process's publishing for `component` (a Job, the TaskRunnerMarker or a name)."""
    global _publishing
    if _publishing is not None:
        return _publishing
    resolve = (lambda: component) if isinstance(component, str) else (lambda: component_of(component))
    _publishing = Publishing(resolve).start()
    return _publishing


def stop_publishing() -> None:
    global _publishing
    publishing, _publishing = _publishing, None
    if publishing is not None:
        publishing.stop()


@hookimpl
def on_starting(component: Any) -> None:
    try:
        start_publishing(component)
    except Exception as exc:
        log.warning("Health/log publishing not started: %s", exc)


@hookimpl
def before_stopping(component: Any) -> None:
    try:
        stop_publishing()
    except Exception as exc:
        log.warning("Health/log publishing did not stop cleanly: %s", exc)


def _is_task_process(task_instance: Any) -> bool:
    return type(task_instance).__name__ == "RuntimeTaskInstance"


@hookimpl
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    global _task_logs
    if not _is_task_process(task_instance) or _task_logs is not None:
        return
    try:
        _task_logs = TaskLogs(task_instance)
    except Exception as exc:
        log.warning("Task log publishing not started: %s", exc)


def _end_task_logs() -> None:
    global _task_logs
    task_logs, _task_logs = _task_logs, None
    if task_logs is not None:
        try:
            task_logs.close()
        except Exception as exc:
            log.warning("Task log publishing did not stop cleanly: %s", exc)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    if _is_task_process(task_instance):
        _end_task_logs()


@hookimpl
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    if _is_task_process(task_instance):
        _end_task_logs()


def status() -> dict[str, object]:
    """This process's publishing, for the api-server's status route and for tests."""
    p = _publishing
    if p is None:
        return {"publishing": False}
    channel = p.channel
    return {
        "publishing": True,
        "component": p.component,
        "member_id": p.member_id,
        "health_rounds": p.health.rounds if p.health else 0,
        "sent": channel.sent if channel is not None else 0,
        "dropped": channel.dropped if channel is not None else 0,
        "tailed_files": [t.path for t in p.tailers],
    }
