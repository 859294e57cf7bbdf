"""The wake-word stage: while the loop is asleep only this hears the echo-cancelled mic.

`base.py` holds the contract, `micro.py` the microWakeWord provider (pymicro-wakeword),
`options.py` each provider's options (`[wake.micro]`), pydantic only.
"""
