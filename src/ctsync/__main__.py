import gc

# Start-up makes objects that live as long as the process: no cycle collection while it runs
# (ctsync.cli.main says more; it turns collection off too, for the console script).
gc.disable()

from ctsync.cli import main  # noqa: E402

main()
