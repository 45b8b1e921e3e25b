"""The rule engine: event processing from the outbox, actions, cycle checks, scheduled rules on
Temporal Schedules, and webhook signatures."""

from service.automation.context import AutomationContext
from service.automation.engine import MAX_CHAIN_DEPTH, dry_run, process_event, process_pending

__all__ = ["MAX_CHAIN_DEPTH", "AutomationContext", "dry_run", "process_event", "process_pending"]
