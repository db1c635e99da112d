from ctsync.cli import main

main()
