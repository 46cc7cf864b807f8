"""The public status page's side of incidents: public updates written by staff, visitors' subscriptions by
e-mail (double opt-in) or webhook (challenge, signed notices), and the Persian notices they receive through
the outbox. The web reads these and asks these services to change things."""
