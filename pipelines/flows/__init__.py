"""Multi-step work that calls AWS or GitHub: provision, delete, CodeBuild, deploy (rule 3: short
transaction, network calls outside any transaction, a new locked transaction to finish)."""
