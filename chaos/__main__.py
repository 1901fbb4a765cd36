import sys
import warnings

warnings.filterwarnings("ignore", message="(?s).*Eventlet is deprecated")

from chaos.run import main  # noqa: E402

sys.exit(main())
