"""`COPY ... TO STDOUT` read in ~1 MiB batches, with per-row work kept to a minimum.

PostgreSQL sends one CopyData message per row (~110 bytes of CSV in a typical table, so ~10 million
messages per GB). psycopg's `Copy` iterator yields them one by one through a Python generator and a
wait loop: ~2 us of interpreter time per row, which on a 1 GB table is several times the time the
server needs to produce it. This reader drives the same psycopg connection through its libpq wrapper
(`psycopg.pq`, public API): a tight loop of non-blocking `get_copy_data` calls appends rows to a batch,
and only when libpq has no complete row buffered does it wait for the socket (`select`, which releases
the GIL so upload threads run meanwhile). Errors are psycopg's own exception classes
(`psycopg.errors.error_from_result`), so callers catch them as before.
"""

from __future__ import annotations

import selectors
from collections.abc import Iterator

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result

ExecStatus = pq.ExecStatus


class CopyOut:
    """Iterate over `batch_size`-byte batches of a `COPY ... TO STDOUT` statement's output; `rows`
    holds the server's row count afterwards. The connection must be idle (or idle in transaction)."""

    def __init__(self, conn: psycopg.Connection, statement: bytes, batch_size: int = 1 << 20) -> None:
        self.conn = conn
        self.statement = statement
        self.batch_size = batch_size
        self.rows = -1
        self._selector: selectors.DefaultSelector | None = None
        self._events = 0

    # -- libpq plumbing --------------------------------------------------------------------------------
    def _wait(self, events: int) -> None:
        assert self._selector is not None
        if events != self._events:  # (a modify is an unregister and a register: only when it changes)
            self._selector.modify(self.conn.pgconn.socket, events)
            self._events = events
        self._selector.select()

    def _send(self) -> None:
        pgconn = self.conn.pgconn
        pgconn.send_query(self.statement)
        while pgconn.flush() != 0:  # the connection is non-blocking: push the query out
            self._wait(selectors.EVENT_READ | selectors.EVENT_WRITE)
            pgconn.consume_input()

    def _result(self) -> pq.abc.PGresult | None:
        """The next result (None when there are no more), waiting for the socket while libpq is busy."""
        pgconn = self.conn.pgconn
        while True:
            pgconn.consume_input()
            if not pgconn.is_busy():
                return pgconn.get_result()
            self._wait(selectors.EVENT_READ)

    def _results(self) -> list[pq.abc.PGresult]:
        out = []
        while (res := self._result()) is not None:
            out.append(res)
        return out

    def _raise_for(self, results: list[pq.abc.PGresult]) -> None:
        for res in results:
            if res.status == ExecStatus.FATAL_ERROR:
                raise error_from_result(res, encoding=self.conn.info.encoding)

    # -- the stream ------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[bytearray]:
        pgconn = self.conn.pgconn
        with self.conn.lock, selectors.DefaultSelector() as selector:
            self._selector = selector
            selector.register(pgconn.socket, selectors.EVENT_READ)
            self._events = selectors.EVENT_READ
            self._send()
            first = self._result()
            if first is None or first.status != ExecStatus.COPY_OUT:
                rest = [first] if first is not None else []
                rest += self._results()
                self._raise_for(rest)
                raise psycopg.ProgrammingError("the statement is not a COPY ... TO STDOUT")
            finished = False
            try:
                get = pgconn.get_copy_data
                batch = bytearray()
                limit = self.batch_size
                while True:
                    nbytes, data = get(1)  # non-blocking: 0 = no complete row buffered yet
                    if nbytes > 0:
                        batch += data
                        if len(batch) >= limit:
                            yield batch
                            batch = bytearray()
                    elif nbytes == 0:
                        self._wait(selectors.EVENT_READ)
                        pgconn.consume_input()
                    else:  # -1: the COPY is over (or failed: the error is in the results)
                        break
                finished = True
                results = self._results()
                self._raise_for(results)
                done = [r for r in results if r.status == ExecStatus.COMMAND_OK]
                self.rows = done[-1].command_tuples if done and done[-1].command_tuples is not None else -1
                if batch:
                    yield batch
            finally:
                if not finished:
                    self._abandon()
            self._selector = None

    def _abandon(self) -> None:
        """The reader stopped mid-COPY (the consumer failed): cancel it and drain the connection, so
        the caller's transaction can roll back normally."""
        pgconn = self.conn.pgconn
        self.conn.cancel_safe(timeout=10)
        try:
            while True:
                nbytes, _ = pgconn.get_copy_data(1)
                if nbytes == 0:
                    self._wait(selectors.EVENT_READ)
                    pgconn.consume_input()
                elif nbytes < 0:
                    break
            self._raise_for(self._results())
        except (
            psycopg.Error
        ):  # QueryCanceled, or whatever ended the COPY first: the caller is failing already
            pass
