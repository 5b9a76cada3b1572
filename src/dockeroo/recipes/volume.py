"""dockeroo:docker.volume: a named Docker volume."""

from zc.buildout import UserError

from ..recipe import Recipe as Base, label_args


class Recipe(Base):
    recipe = "docker.volume"

    def setup(self):
        self.driver = self.opts.word("driver", default="local")
        hint = " (name defaults to the part name)" if self.name == self.part else ""
        self.opts.object_name(self.name_option, self.name, strict=self.driver == "local",
                              hint=hint)
        self.driver_opts = self.opts.key_values("driver-opts")
        self.user_labels = self.opts.key_values("labels")
        self.options["volume"] = self.name

    @classmethod
    def owned(cls, values):
        return [("volume", values["name"])]

    def ensure(self):
        current = self.engine.inspect("volume", self.name)
        if current is None:
            args = ["volume", "create", "--driver", self.driver]
            for key, value in self.driver_opts.items():
                args += ["--opt", "%s=%s" % (key, value)]
            args += label_args(self.labels(extra=self.user_labels))
            self.run(args + [self.name])
            self.engine.forget("volume", self.name)
            self.log.info("Created volume %s", self.name)
            return []
        have_opts = current.get("Options") or {}
        if current.get("Driver") != self.driver or have_opts != self.driver_opts:
            raise UserError(
                "Part [%s]: volume %s already exists with driver %s and options %s, "
                "but the part asks for driver %s and options %s; its data is not dropped: "
                "remove the volume by hand or choose another name"
                % (self.part, self.name, current.get("Driver"), have_opts or "{}",
                   self.driver, self.driver_opts or "{}"))
        return []


uninstall = Recipe.uninstaller()
