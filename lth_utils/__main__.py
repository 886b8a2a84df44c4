import os
import sys

from .cli import main

try:
    code = main()
    sys.stdout.flush()
except BrokenPipeError:  # the reader (`... | head`) has closed the pipe: stop without a word
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's signal docs
    code = 1
sys.exit(code)
