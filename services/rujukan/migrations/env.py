from bersinar.migrations import run_env
from services.rujukan.models import Base

run_env(Base.metadata)
