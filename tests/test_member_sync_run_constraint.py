from django.db import IntegrityError, transaction

from integrations.models import GitHubIntegration, MemberSyncRun
from tests.base import BaseTestCase

Status = MemberSyncRun.Status
Trigger = MemberSyncRun.Trigger


class OneActiveRunTestCase(BaseTestCase):
    def start_run(self, integration=None, status=Status.QUEUED):
        return MemberSyncRun.objects.create(
            integration=integration or self.integration, trigger=Trigger.MANUAL, status=status, requested_by=self.alice
        )

    def test_the_database_refuses_a_second_queued_run(self):
        self.start_run()
        with self.assertRaises(IntegrityError), transaction.atomic():
            self.start_run()
        self.assertEqual(MemberSyncRun.objects.filter(integration=self.integration).count(), 1)

    def test_the_database_refuses_a_queued_run_while_one_is_syncing(self):
        self.start_run(status=Status.SYNCING)
        with self.assertRaises(IntegrityError), transaction.atomic():
            self.start_run()

    def test_the_database_refuses_moving_a_second_run_back_to_syncing(self):
        self.start_run()
        finished = self.start_run_after_finishing_one()
        with self.assertRaises(IntegrityError), transaction.atomic():
            MemberSyncRun.objects.filter(pk=finished.pk).update(status=Status.SYNCING)

    def start_run_after_finishing_one(self):
        MemberSyncRun.objects.filter(integration=self.integration).update(status=Status.COMPLETE)
        self.start_run()
        return MemberSyncRun.objects.filter(status=Status.COMPLETE).get()

    def test_finished_runs_do_not_block_a_new_one(self):
        self.start_run(status=Status.COMPLETE)
        self.start_run(status=Status.ERROR)
        self.start_run()
        self.assertEqual(MemberSyncRun.objects.filter(integration=self.integration).count(), 3)

    def test_other_integrations_run_independently(self):
        other = GitHubIntegration.objects.create(team=self.other_team, organization_login="globex")
        self.start_run()
        self.start_run(integration=other)
        self.assertEqual(MemberSyncRun.objects.filter(status=Status.QUEUED).count(), 2)

    def test_a_completed_run_reports_its_result(self):
        run = self.start_run(status=Status.COMPLETE)
        run.members_created, run.total = 3, 3
        self.assertEqual(
            run.result(),
            {"created": 3, "updated": 0, "deactivated": 0, "unchanged": 0, "total": 3, "held": 0, "skipped": 0},
        )
        self.assertIsNone(self.start_run().result())
