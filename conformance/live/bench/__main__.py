import sys

from conformance.live.bench.runner import main

sys.exit(main())
