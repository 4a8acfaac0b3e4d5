"""Top-level alias of deploy/face_model.py, so `import face_model` works as in 2019."""
from deploy.face_model import *  # noqa: F401,F403
from deploy.face_model import __all__  # noqa: F401
