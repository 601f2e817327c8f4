"""Model code the security tests write into registered packages (as files; never imported here).

``TINY``: a conv and a head, small enough to lower in seconds, and a factory that aborts; the
text needs ``os``, ``torch`` and ``nn`` imported before it and holds no braces (a test formats it).
"""

TINY = """

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 2, 1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))


def tiny():
    return Tiny()


def aborts():
    os.abort()
"""
