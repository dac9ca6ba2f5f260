// Placeholder until the client issue lands.
print("ninep: not yet implemented")
