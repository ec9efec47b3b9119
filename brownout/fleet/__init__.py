"""A fleet of sidecars: discovery, blast radius, synchronized arming, the fleet kill switch."""
