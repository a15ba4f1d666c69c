"""The site bus on RabbitMQ: the transport (``amqp``), its topology and broker users
(``topology``), and a local broker for trying it and for tests (``broker``). docs/multisite.md."""
