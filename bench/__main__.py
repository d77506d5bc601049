"""`make bench`: every benchmark, each printing its table and its bars."""

from bench import member_sync, members_page, pipeline, schedule, webhooks

if __name__ == "__main__":
    member_sync.main()
    pipeline.main()
    members_page.main()
    schedule.main()
    webhooks.main()
