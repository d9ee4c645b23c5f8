"""``saturate demo``: the whole path on this machine; ``steps`` runs it, ``cli`` parses its flags."""
