import sys

from conformance.live.faults.runner import main

sys.exit(main())
