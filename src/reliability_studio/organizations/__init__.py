"""Organizations (tenants). Every row in the database belongs to one."""
