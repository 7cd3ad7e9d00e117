from paretochain.cli import main

raise SystemExit(main())
