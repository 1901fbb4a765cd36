import sys
import warnings

# eventlet (imported by nameko under bersinar) warns on import; the bench need not show it
warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="pkg_resources is deprecated")

from bench.run import main  # noqa: E402

sys.exit(main())
