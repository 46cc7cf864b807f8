"""The desk (tickets, departments, SLA on the office calendar, Persian text rules, knowledge base) and the ledger."""
