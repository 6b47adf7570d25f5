"""OAuth clients (relying parties) registered with Gatehouse as an OpenID provider."""
