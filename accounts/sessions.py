"""Django's database sessions, read with one plain statement.

Every page and every event stream's opening reads the session first. Through the ORM that read cost
0.52 ms of CPU, most of it building the same query anew each time; the statement written out costs
0.19 ms, decoding included (PostgreSQL, measured in process). A restart storm is thousands of
stream openings, and the session was a fifth of each (docs/reliability.md). Writing and deleting
sessions stay Django's.
"""

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        model = self.model
        connection = connections[router.db_for_read(model)]
        table = connection.ops.quote_name(model._meta.db_table)
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        with connection.cursor() as cursor:
            cursor.execute(
                # The table's name is the model's, quoted; the values are parameters.
                f"SELECT session_data FROM {table} WHERE session_key = %s AND expire_date > %s",  # noqa: S608
                [self.session_key, now],
            )
            row = cursor.fetchone()
        if row is None:
            # As Django's: a key that names no live session is forgotten, so a new one is made.
            self._session_key = None
            return None
        # A row matched `session_key = %s`, so the key is not None.
        assert self.session_key is not None
        return model(session_key=self.session_key, session_data=row[0])
