"""Pure session policy: group rules, lobby, commands, checklists, hazard log and gate."""
