// Placeholder until the client issue lands.
public enum NinePClientPlaceholder {}
