"""The agent registry's SQL functions and the agent fields they take, declared once."""

from __future__ import annotations

from ._params import Choices, Flag, Interval, Param, Signature, Strings, Text

#: The largest magnitude a stored amount may have (README "Reliability"; the registry and usage check it).
MAX_STORED = 1e12
#: Largest context window accepted (tokens): larger than any model's, small enough for every reader's int64 math.
MAX_CONTEXT_WINDOW = 1 << 40
AGENT_TYPES = ("llm", "tool", "api", "human", "ensemble")
#: What an agent may serve: anything at its quality (general), or only what its evidence claims (specialist).
SCOPES = ("general", "specialist")

_AREA = "10_registry"
NAME = Param("name", "VARCHAR", check=Text(), doc="the agent's name (unique; registering it again replaces it)",
             per_row=True)
_AMOUNT = Interval(0, MAX_STORED)
#: Every field of an agent's configuration, in the order ruvector_register_agent takes them.
AGENT_FIELDS = (
    NAME,
    Param("agent_type", "VARCHAR", check=Choices(AGENT_TYPES), doc="llm, tool, api, human or ensemble",
          per_row=True),
    Param("capabilities", "VARCHAR[]", check=Strings(), doc="what the agent can do, in a few words each",
          per_row=True),
    Param("cost_per_1k_tokens", "DOUBLE", None, _AMOUNT, "dollars per 1,000 tokens in + out", per_row=True),
    Param("cost_per_call", "DOUBLE", None, _AMOUNT, "dollars per call", per_row=True),
    Param("cost_per_second", "DOUBLE", None, _AMOUNT, "dollars per second of latency", per_row=True),
    Param("avg_latency_ms", "DOUBLE", None, _AMOUNT, "average latency in milliseconds", per_row=True),
    Param("quality_score", "DOUBLE", None, Interval(0, 1), "expected quality in [0, 1] (a prior until usage is "
          "recorded)", per_row=True),
    Param("metadata", "JSON", None, doc="a JSON object (text, STRUCT or MAP); its context_window is the agent's "
          "when not given", per_row=True),
    Param("description", "VARCHAR", None, doc="one sentence on what the agent is for (matched like capabilities)",
          per_row=True),
    Param("examples", "VARCHAR[]", None, Strings(), "example requests the agent serves (strong evidence)",
          per_row=True),
    Param("context_window", "BIGINT", None, Interval(1, MAX_CONTEXT_WINDOW, integer=True),
          "tokens in + out the agent can read (none: no limit)", per_row=True),
    Param("max_output_tokens", "BIGINT", None, Interval(1, MAX_CONTEXT_WINDOW, integer=True),
          "the largest output in tokens", per_row=True),
    Param("scope", "VARCHAR", None, Choices(SCOPES), "general (answers anything at its quality: a prior when "
          "nothing matches) or specialist (serves only what its evidence claims); default: general for an llm, "
          "specialist otherwise", per_row=True),
)
#: Fields a JSON config (ruvector_register_agent_full) may set beyond those: learned statistics and the switch.
CONFIG_ONLY_FIELDS = (
    Param("avg_output_tokens", "DOUBLE", None, _AMOUNT, "average output tokens (default from settings)"),
    Param("p99_latency_ms", "DOUBLE", None, _AMOUNT, "99th percentile latency in milliseconds"),
    Param("success_rate", "DOUBLE", None, Interval(0, 1), "share of successful calls"),
    Param("active", "BOOLEAN", True, Flag(), "whether routing may choose the agent"),
)
LOG = Param("log", "VARCHAR", doc="a Parquet, CSV or JSON file (by extension), or a folder or glob of them")
COLUMNS = Param("columns", "JSON", None, doc="maps the log's fields to its column names, e.g. "
                '\'{"request": "prompt", "agent": "model"}\' (JSON text, a STRUCT or a MAP)')

SIGNATURES = (
    Signature("ruvector_register_agent", AGENT_FIELDS, _AREA, twin="Engine.register_agent",
              doc="Register or replace agents (vectorized: one write per batch of rows); true per row. Beyond the "
                  "seed's parameters: a description and example requests (matching uses them with the "
                  "capabilities), the context window and the largest output in tokens."),
    Signature("ruvector_register_agent_full",
              (Param("config", "VARCHAR", doc="a JSON object with any agent field", per_row=True),), _AREA,
              twin="Engine.register_agent_full",
              doc="Register one agent from a JSON config holding any agent field, the learned ones included."),
    Signature("ruvector_list_agents", (), _AREA, twin="Engine.list_agents", doc="Every agent, sorted by name."),
    Signature("ruvector_import_agents",
              (LOG, COLUMNS, Param("agent_type", "VARCHAR", "llm", Choices(AGENT_TYPES), "every agent's type"),
               Param("capabilities", "VARCHAR[]", ("general",), Strings(), "every agent's capabilities (repeatable)",
                     flag="--capability", metavar="CAPABILITY")),
              _AREA, twin="Engine.import_agents",
              doc="Register every agent of an outcome log (wide like RouterBench, or long), priced and scored by the "
                  "log: one row per agent (name, observed, quality_score, cost_per_call or cost_per_1k_tokens, "
                  "avg_latency_ms)."),
    Signature("ruvector_get_agent", (Param("name", "VARCHAR", doc="the agent's name", per_row=True),), _AREA,
              twin="Engine.get_agent", doc="One agent as a STRUCT, NULL if unknown."),
    Signature("ruvector_remove_agent", (Param("name", "VARCHAR", doc="the agent's name", per_row=True),), _AREA,
              twin="Engine.remove_agent", doc="Delete an agent; an error if it does not exist."),
    Signature("ruvector_set_agent_active",
              (Param("name", "VARCHAR", doc="the agent's name", per_row=True),
               Param("is_active", "BOOLEAN", check=Flag(), doc="whether routing may choose it", per_row=True)),
              _AREA, twin="Engine.set_agent_active", doc="Switch an agent on or off; an error if it does not exist."),
    Signature("ruvector_clear_agents", (), _AREA, twin="Engine.clear_agents",
              doc="Delete every agent; returns how many."),
    Signature("ruvector_find_agents_by_capability",
              (Param("capability", "VARCHAR", check=Text(), doc="a capability, in words"),
               Param("limit", "BIGINT", 10, Interval(1, integer=True), "agents to return")), _AREA,
              twin="Engine.find_agents_by_capability",
              doc="Agents holding a capability: exact holders first, then by embedding similarity."),
    Signature("ruvector_update_agent_metrics",
              (Param("name", "VARCHAR", doc="the agent's name", per_row=True),
               Param("latency_ms", "DOUBLE", check=_AMOUNT, doc="the observed latency", per_row=True),
               Param("success", "BOOLEAN", check=Flag(), doc="whether the call succeeded", per_row=True),
               Param("quality", "DOUBLE", None, Interval(0, 1), "the observed quality in [0, 1]", per_row=True)),
              _AREA, twin="Engine.update_agent_metrics",
              doc="Fold an observed outcome into the agent's running stats (EWMA, alpha 0.1)."),
    Signature("ruvector_embed", (Param("text", "VARCHAR", doc="the text", per_row=True),), "15_embed",
              twin="Engine.embed", doc="The active embedder's unit vector of a text (FLOAT[D]); NULL for NULL."),
)

__all__ = ["AGENT_FIELDS", "AGENT_TYPES", "COLUMNS", "CONFIG_ONLY_FIELDS", "LOG", "MAX_CONTEXT_WINDOW",
           "MAX_STORED", "SIGNATURES"]
