from .pipeline.profile import *  # noqa: F401,F403  (moved to aulib.pipeline.profile; this name goes after the merge)
