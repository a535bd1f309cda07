"""What the product knows about the OpenAI(-compatible) service: `client` (making the client,
endpoints, rate-limit headers), `errors` (messages a user can act on), `retirement` (retired
models and refused parameters, remembered for the process), `catalogue` (limits, prices,
shutdown dates; pure data) and `models` (shutdown warnings from the server's catalogue).

Nothing is imported here: `config` imports `catalogue`, and the other modules import `config`."""
