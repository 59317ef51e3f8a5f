import sys

from hybrid_agent.cli import main

sys.exit(main())
