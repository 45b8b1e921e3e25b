"""The twelve BullMQ queues: the producer (``producer``), one processor module per queue family
(``messaging``, ``delivery``, ``audit``, ``inference``, ``reports``, ``sla``, ``sync``), the
signing scheme of outbound calls (``signing``) and the background runner (``runner``)."""

__all__: list[str] = []
